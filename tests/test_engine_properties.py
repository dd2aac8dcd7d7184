"""Properties of the engine's pure core (issue 13, item 9): the same facts in any order, with
any drone clock in the accepted window, give the same decisions; late data and silence fill
in or leave unknown but never clear; a diversion's plan does not depend on order; the
payload's exposure counts each second once, as in range, out of it or unknown."""

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dronelog.domain.alerts import AlertKind
from dronelog.domain.facts import TelemetryFact
from dronelog.domain.monitoring import Report, diverted_route, evaluate_flight
from dronelog.domain.telemetry_rules import temperature_exposure
from tests.test_domain_monitoring import (
    DESTINATION,
    NOW,
    ORIGIN,
    RULES,
    cargo,
    diverted,
    heading_north,
    kinds,
    reports,
    snapshot,
    unknowns,
)

ACCEPTED_OFFSETS = st.floats(-300, 300)  # the ingester's window: 5 min either way


def decisions(evaluation) -> tuple:
    """What a sweep acts on: each condition with its details, and each unknown."""
    return (sorted((c.subject_id, c.kind.value, c.message) for c in evaluation.conditions),
            sorted((u.subject_id, u.kind.value) for u in evaluation.unknown))


# --- every ordering, every accepted clock ------------------------------------------------


@given(data=st.data(), offset_s=ACCEPTED_OFFSETS, silence_s=st.floats(0, 300),
       speed=st.floats(0, 30), sideways_m=st.sampled_from([0.0, 1_000.0]),
       deadline_in_s=st.floats(60, 7200))
@settings(max_examples=200, deadline=None)
def test_every_ordering_and_repetition_of_the_reports_gives_the_same_decisions(
        data, offset_s, silence_s, speed, sideways_m, deadline_in_s):
    facts = reports(offset_s=offset_s, silence_s=silence_s, speed=speed, sideways_m=sideways_m)
    shuffled = data.draw(st.permutations(facts))
    repeated = data.draw(st.lists(st.sampled_from(facts), max_size=5))
    items = (cargo(deadline_in_s),)
    assert decisions(evaluate_flight(snapshot(tuple(shuffled) + tuple(repeated), items), NOW,
                                     RULES)) == \
        decisions(evaluate_flight(snapshot(facts, items), NOW, RULES))


@pytest.mark.parametrize("offset_s", [-300.0, -299.0, 0.0, 299.0, 300.0])
@pytest.mark.parametrize("silence_s", [0.0, RULES.lost_link_s - 1, RULES.lost_link_s + 1])
def test_at_the_edges_of_the_accepted_clock_window_the_decisions_are_a_perfect_clocks(
        offset_s, silence_s):
    items = (cargo(20 * 60),)
    crawling = dict(speed=9.0, battery_at_end=25.0, drain_per_s=0.02, span_s=600.0,
                    silence_s=silence_s)
    skewed = evaluate_flight(snapshot(reports(offset_s=offset_s, **crawling), items), NOW, RULES)
    perfect = evaluate_flight(snapshot(reports(**crawling), items), NOW, RULES)
    assert decisions(skewed) == decisions(perfect)
    assert kinds(perfect) >= ({("SP-1", AlertKind.PREDICTED_BREACH)}
                              if silence_s < RULES.lost_link_s else set())


# --- late data: what has not arrived yet does not count; what arrives never clears --------


@given(offset_s=ACCEPTED_OFFSETS, late_s=st.floats(1, 600), speed=st.floats(0, 30),
       deadline_in_s=st.floats(60, 7200))
@settings(max_examples=150, deadline=None)
def test_reports_not_yet_received_change_nothing_now(offset_s, late_s, speed, deadline_in_s):
    received = reports(offset_s=offset_s, silence_s=RULES.lost_link_s + 5, speed=speed)
    # store and forward: the gap's reports, made before NOW, reach the server late_s after it
    gap = tuple(Report(r.telemetry, r.received_at + timedelta(seconds=late_s + 60))
                for r in reports(offset_s=offset_s, speed=speed, span_s=30.0))
    items = (cargo(deadline_in_s),)
    assert decisions(evaluate_flight(snapshot(received + gap, items), NOW, RULES)) == \
        decisions(evaluate_flight(snapshot(received, items), NOW, RULES))


@given(offset_s=ACCEPTED_OFFSETS, silence_s=st.floats(RULES.lost_link_s + 0.01, 3600),
       speed=st.floats(0, 30), sideways_m=st.sampled_from([0.0, 1_000.0]),
       deadline_in_s=st.floats(60, 7200))
@settings(max_examples=150, deadline=None)
def test_a_silence_never_clears_what_it_cannot_see(offset_s, silence_s, speed, sideways_m,
                                                   deadline_in_s):
    evaluation = evaluate_flight(snapshot(reports(offset_s=offset_s, silence_s=silence_s,
                                                  speed=speed, sideways_m=sideways_m),
                                          (cargo(deadline_in_s),)), NOW, RULES)
    assert unknowns(evaluation) == {("F1", AlertKind.OFF_ROUTE), ("F1", AlertKind.LOW_BATTERY),
                                    ("SP-1", AlertKind.PREDICTED_BREACH)}
    assert kinds(evaluation) == {("F1", AlertKind.LOST_LINK)}


# --- diversions -----------------------------------------------------------------------------


@given(offset_s=ACCEPTED_OFFSETS, silence_s=st.floats(0, 3600), deadline_in_s=st.floats(60, 7200),
       data=st.data())
@settings(max_examples=150, deadline=None)
def test_diverted_cargo_is_raised_whatever_the_clock_the_silence_or_the_order(
        offset_s, silence_s, deadline_in_s, data):
    facts = heading_north(offset_s=offset_s, silence_s=silence_s)
    shuffled = tuple(data.draw(st.permutations(facts)))
    evaluation = evaluate_flight(diverted(shuffled, deadline_in_s), NOW, RULES)
    assert ("SP-1", AlertKind.CARGO_DIVERTED) in kinds(evaluation)
    assert decisions(evaluation) == decisions(evaluate_flight(diverted(facts, deadline_in_s),
                                                              NOW, RULES))


@given(data=st.data(), cut=st.integers(0, 24))
@settings(max_examples=100, deadline=None)
def test_the_plan_after_a_diversion_starts_at_the_last_report_before_it_in_any_order(data, cut):
    track = [r.telemetry for r in reports()]  # 25 reports, 5 s apart
    diverted_at = track[cut].event_time + timedelta(seconds=data.draw(st.floats(0, 4.9)))
    plan = diverted_route(data.draw(st.permutations(track)), diverted_at, ORIGIN, DESTINATION)
    assert plan == ((track[cut].lat, track[cut].lon), DESTINATION)
    assert diverted_route(track[cut + 1:], track[cut].event_time, ORIGIN, DESTINATION) == \
        (ORIGIN, DESTINATION)  # nothing reported before it: from the origin


# --- the payload's exposure -----------------------------------------------------------------


def readings(times_and_temps, seq0=0):
    start = NOW - timedelta(hours=1)
    return [TelemetryFact("uav-02", seq0 + i, start + timedelta(seconds=t), 36.7, 119.8, 150.0,
                          18.0, 60.0, 80.0, "F1", temp)
            for i, (t, temp) in enumerate(times_and_temps)]


SERIES = st.lists(st.tuples(st.integers(0, 3600), st.floats(-5, 20)), min_size=1,
                  max_size=40)


@given(series=SERIES, data=st.data(), max_gap_s=st.floats(1, 600))
@settings(max_examples=200, deadline=None)
def test_the_exposure_does_not_depend_on_the_order_or_repetition_of_readings(series, data,
                                                                             max_gap_s):
    track = readings(series)
    again = data.draw(st.permutations(track)) + data.draw(st.lists(st.sampled_from(track),
                                                                   max_size=5))
    start, end = track[0].event_time - timedelta(minutes=3), max(
        s.event_time for s in track) + timedelta(minutes=4)
    assert temperature_exposure(again, 2.0, 8.0, max_gap_s=max_gap_s, start=start, end=end) == \
        temperature_exposure(track, 2.0, 8.0, max_gap_s=max_gap_s, start=start, end=end)


@given(series=SERIES, max_gap_s=st.floats(1, 600))
@settings(max_examples=200, deadline=None)
def test_every_second_of_the_flight_is_out_of_range_in_range_or_unknown_once(series,
                                                                             max_gap_s):
    track = readings(series)
    times = sorted(s.event_time for s in track)
    start, end = times[0] - timedelta(seconds=200), times[-1] + timedelta(seconds=300)
    exposure = temperature_exposure(track, 2.0, 8.0, max_gap_s=max_gap_s, start=start, end=end)
    everything_in = temperature_exposure(track, -100.0, 100.0, max_gap_s=max_gap_s,
                                         start=start, end=end)
    everything_out = temperature_exposure(track, 100.0, 200.0, max_gap_s=max_gap_s,
                                          start=start, end=end)
    span = (end - start).total_seconds()
    # a silence after take-off (200 s) or before landing (300 s) is unknown beyond
    # max_gap_s only, and the last reading holds no time (the simulator's rule): the rest of
    # the span is out of range or unknown
    edges = min(200.0, max_gap_s) + min(300.0, max_gap_s)
    assert everything_out.seconds_out_of_range + everything_out.seconds_unknown + \
        edges == pytest.approx(span)
    assert everything_in.seconds_out_of_range == 0.0
    assert exposure.seconds_unknown == everything_in.seconds_unknown
    assert 0 <= exposure.seconds_out_of_range <= everything_out.seconds_out_of_range + 1e-6


@given(series=SERIES, late=SERIES, max_gap_s=st.floats(1, 600))
@settings(max_examples=200, deadline=None)
def test_late_readings_only_turn_unknown_time_into_known_time(series, late, max_gap_s):
    early = readings(series)
    both = early + readings(late, seq0=1000)
    start = min(s.event_time for s in both)
    end = max(s.event_time for s in both) + timedelta(seconds=1)
    before = temperature_exposure(early, 2.0, 8.0, max_gap_s=max_gap_s, start=start, end=end)
    after = temperature_exposure(both, 2.0, 8.0, max_gap_s=max_gap_s, start=start, end=end)
    assert after.seconds_unknown <= before.seconds_unknown + 1e-6


def test_a_gap_longer_than_the_maximum_is_unknown_beyond_it_not_the_last_reading_extended():
    # 9 °C (out of 2-8) at 0, then nothing until 5 °C at 300 s: 120 s vouched for, 180 unknown
    exposure = temperature_exposure(readings([(0, 9.0), (300, 5.0), (330, 5.0)]), 2.0, 8.0,
                                    max_gap_s=120.0)
    assert (exposure.seconds_out_of_range, exposure.seconds_unknown) == (120.0, 180.0)
    assert not exposure.excursion  # exactly the grace period known out of range
    within = temperature_exposure(readings([(0, 9.0), (120, 5.0)]), 2.0, 8.0, max_gap_s=120.0)
    assert (within.seconds_out_of_range, within.seconds_unknown) == (120.0, 0.0)
    beyond = temperature_exposure(readings([(0, 9.0), (121, 5.0)]), 2.0, 8.0, max_gap_s=120.0)
    assert (beyond.seconds_out_of_range, beyond.seconds_unknown) == (120.0, 1.0)


def test_a_flight_without_readings_is_unknown_from_take_off_to_landing():
    track = [TelemetryFact("uav-02", 0, NOW, 36.7, 119.8, 150.0, 18.0, 60.0, 80.0, "F1")]
    exposure = temperature_exposure(track, 2.0, 8.0, start=NOW - timedelta(minutes=20),
                                    end=NOW)
    assert (exposure.min_c, exposure.seconds_out_of_range, exposure.seconds_unknown) == \
        (None, 0.0, 1200.0)
