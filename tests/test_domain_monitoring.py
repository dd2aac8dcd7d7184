"""The flight monitoring core (dronelog.domain.monitoring): liveness by received time, event
times corrected by each drone's clock offset, and silence that never clears an alert."""

from datetime import UTC, datetime, timedelta

import pytest
from geographiclib.geodesic import Geodesic
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dronelog.domain.alerts import AlertKind
from dronelog.domain.facts import TelemetryFact
from dronelog.domain.monitoring import (
    Cargo,
    FlightSnapshot,
    MonitoringRules,
    Report,
    clock_offset_s,
    corrected_track,
    evaluate_flight,
    flight_eta,
)

NOW = datetime(2026, 11, 22, 8, 30, tzinfo=UTC)
ORIGIN = (36.689, 119.761)
RULES = MonitoringRules()  # lost link after 30 s


def point(start, azimuth: float, distance_m: float) -> tuple[float, float]:
    line = Geodesic.WGS84.Direct(*start, azimuth, distance_m)
    return line["lat2"], line["lon2"]


DESTINATION = point(ORIGIN, 60.0, 20_000)  # a straight 20 km route
ROUTE = (ORIGIN, DESTINATION)


def reports(*, offset_s: float = 0.0, silence_s: float = 0.0, every_s: float = 5.0,
            span_s: float = 120.0, speed: float = 18.0, battery_at_end: float = 80.0,
            drain_per_s: float = 0.0, latency_s: float = 0.3, start_m: float = 5_000.0,
            sideways_m: float = 0.0, flight_id: str = "F1") -> tuple[Report, ...]:
    """Reports every `every_s` over `span_s`, the last received `silence_s` before NOW, from
    a drone flying the route at `speed`; its clock is `offset_s` slow (negative: fast)."""
    count = int(span_s // every_s) + 1
    last_received = NOW - timedelta(seconds=silence_s)
    result = []
    for i in range(count):
        age = (count - 1 - i) * every_s  # seconds before the last report
        received = last_received - timedelta(seconds=age)
        made = received - timedelta(seconds=latency_s)
        along = start_m + speed * (span_s - age)
        here = point(point(ORIGIN, 60.0, along), 150.0, sideways_m)
        result.append(Report(TelemetryFact(
            "uav-02", i, made - timedelta(seconds=offset_s), here[0], here[1], 150.0, speed,
            60.0, battery_at_end + drain_per_s * age, flight_id), received))
    return tuple(result)


def snapshot(flight_reports, cargo=(), route=ROUTE) -> FlightSnapshot:
    return FlightSnapshot("F1", "uav-02", "LAB", route, flight_reports, cargo)


def cargo(deadline_in_s: float, barcode: str = "SP-1") -> Cargo:
    return Cargo(barcode, "stat", NOW + timedelta(seconds=deadline_in_s), "LAB", 5.0)


def kinds(evaluation) -> set[tuple[str, AlertKind]]:
    return {(c.subject_id, c.kind) for c in evaluation.conditions}


def unknowns(evaluation) -> set[tuple[str, AlertKind]]:
    return {(u.subject_id, u.kind) for u in evaluation.unknown}


# --- liveness by received time -----------------------------------------------------------

def test_a_drone_60_s_slow_reporting_every_5_s_is_alive():
    evaluation = evaluate_flight(snapshot(reports(offset_s=60)), NOW, RULES)
    assert ("F1", AlertKind.LOST_LINK) not in kinds(evaluation)
    assert evaluation.unknown == []


@pytest.mark.parametrize("offset_s", [-300.0, -65.0, 0.0, 60.0, 90.0, 900.0])
def test_a_silence_just_past_the_threshold_is_a_lost_link_and_just_short_of_it_is_not(offset_s):
    silent = evaluate_flight(snapshot(reports(offset_s=offset_s,
                                              silence_s=RULES.lost_link_s + 1)), NOW, RULES)
    assert ("F1", AlertKind.LOST_LINK) in kinds(silent)
    alive = evaluate_flight(snapshot(reports(offset_s=offset_s,
                                             silence_s=RULES.lost_link_s - 1)), NOW, RULES)
    assert ("F1", AlertKind.LOST_LINK) not in kinds(alive)


def test_a_report_not_yet_received_does_not_count():
    early = reports(silence_s=-10)  # the last two are received after NOW
    assert len([r for r in early if r.received_at > NOW]) == 2
    track = corrected_track(early, NOW)
    assert len(track) == len(early) - 2
    assert all(sample.event_time <= NOW for sample in track)


# --- clock offset ------------------------------------------------------------------------

@pytest.mark.parametrize("offset_s", [-300.0, -65.0, 0.0, 60.0, 600.0])
def test_the_offset_is_the_median_of_received_minus_event_time(offset_s):
    flight_reports = reports(offset_s=offset_s, latency_s=0.5)
    # one report held up 40 s in transit does not move the median
    delayed = flight_reports[3]
    flight_reports = (*flight_reports[:3], Report(delayed.telemetry,
                                                  delayed.received_at + timedelta(seconds=40)),
                      *flight_reports[4:])
    assert clock_offset_s(flight_reports, NOW) == pytest.approx(offset_s + 0.5)


def test_corrected_times_are_on_the_servers_clock_and_never_after_the_arrival():
    steady = reports(offset_s=-65, latency_s=0.5)  # the same latency: exactly the arrivals
    assert [s.event_time for s in corrected_track(steady, NOW)] == [
        r.received_at for r in steady]
    quick = Report(steady[-1].telemetry, steady[-1].received_at - timedelta(seconds=0.4))
    jittery = (*steady[:-1], quick)  # the last one came faster than the median
    assert corrected_track(jittery, NOW)[-1].event_time == quick.received_at


def test_the_eta_does_not_depend_on_the_drones_clock():
    base = flight_eta(ROUTE, reports(), NOW)
    for offset_s in (-300.0, -65.0, 60.0, 600.0):
        eta = flight_eta(ROUTE, reports(offset_s=offset_s), NOW)
        assert eta.arrival_at == base.arrival_at and eta.remaining_m == base.remaining_m


def test_a_drone_65_s_fast_still_gets_its_predicted_breach_and_low_battery():
    # 10.4 km flown of 20 at 9 m/s: about 18 min to go plus 5 to the lab, for a STAT due
    # in 20 min; 2.4 % per 1,080 m of cruise makes the 9.6 km ahead cost 21 %, and 25 % is
    # left: less than that plus the 20 % reserve
    crawling = reports(offset_s=-65, speed=9.0, battery_at_end=25.0, drain_per_s=0.02,
                       span_s=600.0)
    evaluation = evaluate_flight(snapshot(crawling, (cargo(20 * 60),)), NOW, RULES)
    assert {("SP-1", AlertKind.PREDICTED_BREACH), ("F1", AlertKind.LOW_BATTERY)} <= \
        kinds(evaluation)
    assert evaluation.unknown == []


# --- silence is not an all-clear -----------------------------------------------------------

def test_silence_makes_off_route_low_battery_and_the_prediction_unknown():
    silent = reports(silence_s=240, speed=3.0, sideways_m=0.0)
    evaluation = evaluate_flight(snapshot(silent, (cargo(20 * 60),)), NOW, RULES)
    assert kinds(evaluation) == {("F1", AlertKind.LOST_LINK)}
    assert unknowns(evaluation) == {("F1", AlertKind.OFF_ROUTE), ("F1", AlertKind.LOW_BATTERY),
                                    ("SP-1", AlertKind.PREDICTED_BREACH)}


def test_an_unknown_route_makes_them_unknown_too():
    evaluation = evaluate_flight(snapshot(reports(), (cargo(600),), route=None), NOW, RULES)
    assert kinds(evaluation) == set()
    assert ("SP-1", AlertKind.PREDICTED_BREACH) in unknowns(evaluation)


@given(offset_s=st.floats(-300, 900), silence_s=st.floats(0, 600),
       every_s=st.sampled_from([1.0, 2.0, 5.0, 10.0]), speed=st.floats(0, 30),
       sideways_m=st.sampled_from([0.0, 1_000.0]), deadline_in_s=st.floats(-600, 7200),
       latency_s=st.floats(0, 2))
@settings(max_examples=300, deadline=None)
def test_silent_or_not_each_condition_is_raised_cleared_or_unknown_as_the_data_allows(
        offset_s, silence_s, every_s, speed, sideways_m, deadline_in_s, latency_s):
    assume(abs(silence_s - RULES.lost_link_s) > 1e-3)  # exactly at the threshold: either
    flight_reports = reports(offset_s=offset_s, silence_s=silence_s, every_s=every_s,
                             speed=speed, sideways_m=sideways_m, latency_s=latency_s)
    evaluation = evaluate_flight(snapshot(flight_reports, (cargo(deadline_in_s),)), NOW, RULES)
    raised, undecided = kinds(evaluation), unknowns(evaluation)
    assert not raised & undecided
    watched = {("F1", AlertKind.OFF_ROUTE), ("F1", AlertKind.LOW_BATTERY),
               ("SP-1", AlertKind.PREDICTED_BREACH)}
    if silence_s > RULES.lost_link_s:
        assert ("F1", AlertKind.LOST_LINK) in raised
        assert undecided == watched and not raised & watched
    else:
        assert ("F1", AlertKind.LOST_LINK) not in raised and undecided == set()
        # the same flight with a perfect clock is judged the same
        perfect = evaluate_flight(snapshot(
            reports(silence_s=silence_s, every_s=every_s, speed=speed, sideways_m=sideways_m,
                    latency_s=latency_s), (cargo(deadline_in_s),)), NOW, RULES)
        assert kinds(perfect) == raised


# --- diverted cargo ------------------------------------------------------------------------

ELSEWHERE = point(ORIGIN, 0.0, 12_000)  # the new destination, 12 km north


def diverted(flight_reports, deadline_in_s: float, diverted_flag: bool = True):
    item = Cargo("SP-1", "stat", NOW + timedelta(seconds=deadline_in_s), "LAB", 5.0,
                 DESTINATION)
    return FlightSnapshot("F1", "uav-02", "OTHER", (ORIGIN, ELSEWHERE), flight_reports,
                          (item,), diverted=diverted_flag)


def heading_north(**fields):
    """Reports along the old route (the ETA is to ELSEWHERE all the same)."""
    return reports(**fields)


def test_a_flight_diverted_away_from_the_lab_raises_cargo_diverted():
    evaluation = evaluate_flight(diverted(heading_north(), deadline_in_s=4 * 3600), NOW, RULES)
    assert ("SP-1", AlertKind.CARGO_DIVERTED) in kinds(evaluation)
    alert = next(c for c in evaluation.conditions if c.kind is AlertKind.CARGO_DIVERTED)
    assert alert.site_id == "LAB" and alert.details["new_destination_site_id"] == "OTHER"
    assert "diverted away from its destination" in alert.message
    # far from a breach even by way of the other site: the prediction cannot be told yet
    assert ("SP-1", AlertKind.PREDICTED_BREACH) in unknowns(evaluation)
    assert ("SP-1", AlertKind.PREDICTED_BREACH) not in kinds(evaluation)


def test_a_diversion_that_makes_the_deadline_impossible_is_a_predicted_breach():
    # some 11 km to the other site and 20 km back to the lab at 18 m/s: about 29 min
    evaluation = evaluate_flight(diverted(heading_north(), deadline_in_s=15 * 60), NOW, RULES)
    assert {("SP-1", AlertKind.CARGO_DIVERTED), ("SP-1", AlertKind.PREDICTED_BREACH)} <= \
        kinds(evaluation)


def test_diverted_cargo_is_known_even_while_the_drone_is_silent():
    evaluation = evaluate_flight(diverted(heading_north(silence_s=300), deadline_in_s=15 * 60),
                                 NOW, RULES)
    assert ("SP-1", AlertKind.CARGO_DIVERTED) in kinds(evaluation)
    assert ("SP-1", AlertKind.PREDICTED_BREACH) in unknowns(evaluation)


def test_cargo_carried_part_of_the_way_on_a_planned_flight_is_not_diverted():
    evaluation = evaluate_flight(diverted(heading_north(), deadline_in_s=15 * 60,
                                          diverted_flag=False), NOW, RULES)
    assert not {k for k in kinds(evaluation) | unknowns(evaluation) if k[0] == "SP-1"}


def test_a_diversion_to_the_specimens_own_destination_is_no_alert():
    item = Cargo("SP-1", "stat", NOW + timedelta(hours=2), "LAB", 5.0, DESTINATION)
    evaluation = evaluate_flight(FlightSnapshot("F1", "uav-02", "LAB", ROUTE, reports(), (item,),
                                                diverted=True), NOW, RULES)
    assert kinds(evaluation) == set()
