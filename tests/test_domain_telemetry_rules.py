"""Telemetry rules: pads, off-route distance, lost link, battery, temperature exposure."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from geographiclib.geodesic import Geodesic
from geopy.distance import geodesic

from dronelog.domain.facts import SitePoint, TelemetryFact
from dronelog.domain.telemetry_rules import (
    PadEvent,
    battery_needed_pct,
    lost_link,
    low_battery,
    nearest_leg,
    off_route_m,
    pad_transitions,
    temperature_exposure,
)
from dronelog_sim.network import _time_outside

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
PAD = SitePoint("cjzxwsy", 36.70, 119.95, pad_radius_m=25.0)
WGS84 = Geodesic.WGS84


def point(start, azimuth: float, distance_m: float) -> tuple[float, float]:
    line = WGS84.Direct(start[0], start[1], azimuth, distance_m)
    return line["lat2"], line["lon2"]


def sample(second: float, position=(PAD.lat, PAD.lon), drone: str = "uav-03", speed=0.0,
           battery=80.0, temp: float | None = None, seq: int = 0) -> TelemetryFact:
    return TelemetryFact(drone, seq, T0 + timedelta(seconds=second), position[0], position[1],
                         100.0, speed, 0.0, battery, payload_temp_c=temp)


def distance_to_geodesic(position, start, end) -> float:
    """Ground truth: the least geodesic distance from `position` to the geodesic start-end,
    by ternary search along it (the distance is unimodal along a line this short)."""
    line = WGS84.InverseLine(*start, *end)

    def distance(s: float) -> float:
        here = line.Position(s)
        return geodesic(position, (here["lat2"], here["lon2"])).meters

    low, high = 0.0, line.s13
    for _ in range(100):
        a, b = low + (high - low) / 3, high - (high - low) / 3
        low, high = (low, b) if distance(a) <= distance(b) else (a, high)
    return distance((low + high) / 2)


# --- off route --------------------------------------------------------------------------------


@pytest.mark.parametrize("azimuth", [0.0, 45.0, 90.0, 135.0, 290.0])
@pytest.mark.parametrize("offset_m", [20.0, 300.0, 2_000.0])
def test_off_route_agrees_with_the_geodesic_within_1_percent(azimuth, offset_m):
    start = (36.70, 119.95)
    end = point(start, azimuth, 10_000)
    side = point(point(start, azimuth, 4_000), azimuth + 90, offset_m)
    truth = distance_to_geodesic(side, start, end)
    assert off_route_m(side, [start, end]) == pytest.approx(truth, rel=0.01)
    assert truth == pytest.approx(offset_m, rel=0.01)


def test_off_route_past_the_end_is_the_distance_to_the_end():
    start = (36.70, 119.95)
    end = point(start, 0.0, 5_000)
    beyond = point(end, 45.0, 800)
    assert off_route_m(beyond, [start, end]) == pytest.approx(800, rel=0.01)


def test_nearest_leg_of_a_route_with_a_corner():
    start = (36.70, 119.95)
    corner = point(start, 90.0, 4_000)
    end = point(corner, 0.0, 6_000)
    near_second = point(point(corner, 0.0, 3_000), 90.0, 150)
    leg, distance = nearest_leg(near_second, [start, corner, end])
    assert leg == 1 and distance == pytest.approx(150, rel=0.01)
    assert nearest_leg(point(start, 90.0, 1_000), [start, corner, end]) == (0, pytest.approx(
        0.0, abs=0.5))


def test_a_route_needs_two_points():
    with pytest.raises(ValueError):
        off_route_m((36.7, 119.95), [(36.7, 119.95)])


# --- pads -------------------------------------------------------------------------------------


def away(metres: float) -> tuple[float, float]:
    return point((PAD.lat, PAD.lon), 60.0, metres)


def test_departure_and_arrival_with_hysteresis():
    distances = [0, 20, 30, 40, 100, 30, 24, 28, 33]
    track = [sample(i, away(d), seq=i) for i, d in enumerate(distances)]
    # Inside at first; 30 m is within radius + hysteresis, so it leaves only at 40 m; coming
    # back it arrives only within the radius (24 m), and 28 m and 33 m keep it there.
    assert pad_transitions(track, [PAD]) == [
        PadEvent("departure", PAD.id, T0 + timedelta(seconds=3), "uav-03"),
        PadEvent("arrival", PAD.id, T0 + timedelta(seconds=6), "uav-03"),
    ]


def test_gps_noise_at_the_edge_does_not_flap():
    track = [sample(i, away(d), seq=i) for i, d in enumerate([60, 24, 26, 23, 27, 24, 34])]
    assert [e.kind for e in pad_transitions(track, [PAD])] == ["arrival"]
    assert pad_transitions(track, [PAD], hysteresis_m=0.0)[1].kind == "departure"


def test_drones_are_followed_each_on_its_own_and_in_any_order():
    other = SitePoint("pdrmyy", *point((PAD.lat, PAD.lon), 0.0, 8_000), pad_radius_m=30.0)
    a = [sample(i, away(d), "uav-01", seq=i) for i, d in enumerate([0, 50, 500])]
    b = [sample(i + 0.5, point((other.lat, other.lon), 180.0, d), "uav-02", seq=i)
         for i, d in enumerate([300, 100, 10])]
    mixed = [*b, *a]
    random.Random(3).shuffle(mixed)
    assert pad_transitions(mixed, [PAD, other]) == [
        PadEvent("departure", PAD.id, T0 + timedelta(seconds=1), "uav-01"),
        PadEvent("arrival", other.id, T0 + timedelta(seconds=2.5), "uav-02"),
    ]


# --- lost link --------------------------------------------------------------------------------


def test_lost_link_only_when_airborne_and_silent_past_the_threshold():
    now = T0 + timedelta(seconds=100)
    assert lost_link(T0 + timedelta(seconds=69), now, airborne=True)
    assert not lost_link(T0 + timedelta(seconds=70), now, airborne=True)
    assert not lost_link(T0, now, airborne=False)
    assert lost_link(None, now, airborne=True)
    assert lost_link(T0 + timedelta(seconds=95), now, airborne=True, threshold_s=4)


# --- battery ----------------------------------------------------------------------------------


def cruising(seconds: int = 121, drop_per_s: float = 0.02) -> list[TelemetryFact]:
    """20 m/s due north, draining drop_per_s percent a second: 0.001 % per metre."""
    start = (36.70, 119.95)
    return [sample(i, point(start, 0.0, 20.0 * i), speed=20.0, battery=80.0 - drop_per_s * i,
                   seq=i) for i in range(seconds)]


def test_battery_needed_from_the_drain_per_metre():
    track = cruising()
    now = track[-1].event_time
    assert battery_needed_pct(track, 5_000, now) == pytest.approx(5.0, rel=0.01)
    # A shorter window sees the same rate.
    assert battery_needed_pct(track, 5_000, now, window_s=60) == pytest.approx(5.0, rel=0.01)
    assert battery_needed_pct(track, 5_000, now, window_s=30) is None  # 600 m: too little


def test_no_estimate_while_hovering_or_without_a_drop():
    hovering = [sample(i, battery=80.0 - 0.05 * i, seq=i) for i in range(120)]
    assert battery_needed_pct(hovering, 5_000, hovering[-1].event_time) is None
    flat = cruising(drop_per_s=0.0)
    assert battery_needed_pct(flat, 5_000, flat[-1].event_time) is None


def test_climbing_and_gps_noise_do_not_inflate_the_need():
    # 60 s climbing on the spot (jittering by metres, draining fast), then 60 s of cruise
    climb = [sample(i, point((36.70, 119.95), 0.0, 2.0 * (i % 2)), speed=0.0,
                    battery=100.0 - 0.05 * i, seq=i) for i in range(60)]
    cruise = [sample(60 + i, point((36.70, 119.95), 0.0, 20.0 * i), speed=20.0,
                     battery=97.0 - 0.01 * i, seq=60 + i) for i in range(60)]
    track = climb + cruise
    # cruise alone: 0.59 % over 1,180 m, so 20 km needs about 10 %
    needed = battery_needed_pct(track, 20_000, track[-1].event_time)
    assert needed == pytest.approx(0.59 / 1180 * 20_000, rel=0.01)
    assert not low_battery(track, 20_000, track[-1].event_time)


def test_low_battery_against_need_plus_reserve():
    track = cruising()  # battery now 77.6 %
    now = track[-1].event_time
    assert not low_battery(track, 5_000, now)  # needs 5 + 20
    assert low_battery(track, 60_000, now)  # needs 60 + 20 > 77.6
    assert not low_battery(track, 57_000, now)  # needs 57 + 20 < 77.6
    hovering_low = [sample(i, battery=19.0, seq=i) for i in range(10)]
    assert low_battery(hovering_low, 5_000, hovering_low[-1].event_time)
    assert not low_battery([], 5_000, now)


# --- temperature ------------------------------------------------------------------------------


def test_exposure_of_a_hand_made_series():
    series = [(0, 5.0), (30, 9.0), (90, 10.0), (150, 7.0), (200, 1.0), (260, 5.0)]
    track = [sample(t, temp=v, seq=i) for i, (t, v) in enumerate(series)]
    track.append(sample(100, temp=None, seq=99))  # a sample without a box reading
    exposure = temperature_exposure(track, low_c=2.0, high_c=8.0)
    assert (exposure.min_c, exposure.max_c) == (1.0, 10.0)
    # 9 °C for 60 s, 10 °C for 60 s, 1 °C for 60 s.
    assert exposure.seconds_out_of_range == 180.0
    assert exposure.excursion
    assert exposure.first_out_at == T0 + timedelta(seconds=30)


def test_exactly_the_grace_period_out_of_range_is_no_excursion():
    track = [sample(t, temp=v, seq=t) for t, v in [(0, 9.0), (120, 5.0), (300, 5.0)]]
    exposure = temperature_exposure(track, 2.0, 8.0)
    assert exposure.seconds_out_of_range == 120.0 and not exposure.excursion
    assert temperature_exposure(track, 2.0, 8.0, grace_s=119).excursion


def test_no_readings_no_exposure():
    exposure = temperature_exposure([sample(0)], 2.0, 8.0)
    assert (exposure.min_c, exposure.max_c, exposure.seconds_out_of_range,
            exposure.excursion, exposure.first_out_at) == (None, None, 0.0, False, None)


def test_exposure_matches_the_simulators_ground_truth():
    rng = random.Random(5)
    series = [(T0 + timedelta(seconds=i), 5.0 + rng.gauss(0, 3)) for i in range(600)]
    track = [sample(i, temp=v, seq=i) for i, (_, v) in enumerate(series)]
    rng.shuffle(track)
    expected = _time_outside(series, 2.0, 8.0)
    exposure = temperature_exposure(track, 2.0, 8.0)
    assert exposure.seconds_out_of_range == pytest.approx(expected)
    assert exposure.excursion == (expected > 120)
