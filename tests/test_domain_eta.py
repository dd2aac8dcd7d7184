"""ETA along a route from telemetry, and the predicted turnaround breach."""

from datetime import UTC, datetime, timedelta

import pytest
from geographiclib.geodesic import Geodesic

from dronelog.domain.eta import Eta, estimate_eta, predicted_breach
from dronelog.domain.facts import TelemetryFact

NOW = datetime(2026, 11, 22, 8, 30, tzinfo=UTC)
ORIGIN = (36.70, 119.95)


def point(start: tuple[float, float], azimuth: float, distance_m: float) -> tuple[float, float]:
    line = Geodesic.WGS84.Direct(*start, azimuth, distance_m)
    return line["lat2"], line["lon2"]


DESTINATION = point(ORIGIN, 30.0, 10_000)  # a straight 10 km route
MIDPOINT = point(ORIGIN, 30.0, 5_000)


def sample(seconds_before_now: float, position: tuple[float, float], speed: float,
           seq: int = 0) -> TelemetryFact:
    return TelemetryFact("uav-03", seq, NOW - timedelta(seconds=seconds_before_now),
                         position[0], position[1], 150.0, speed, 30.0, 70.0)


def flying(speeds: list[float], position=MIDPOINT) -> list[TelemetryFact]:
    """One sample a second, the last at now and at `position`, with these speeds."""
    return [sample(len(speeds) - 1 - i, position, speed, seq=i) for i, speed in enumerate(speeds)]


def test_from_the_midpoint_of_10_km_at_20_mps_it_is_250_s_away():
    eta = estimate_eta([ORIGIN, DESTINATION], flying([20.0] * 60), NOW)
    assert eta.distance_total_m == pytest.approx(10_000, rel=1e-6)
    assert eta.remaining_m == pytest.approx(5_000, rel=1e-3)
    assert eta.progress == pytest.approx(0.5, abs=1e-3)
    assert eta.speed_mps == pytest.approx(20.0)
    assert eta.eta_s == pytest.approx(250, rel=0.01)
    assert eta.arrival_at == NOW + timedelta(seconds=eta.eta_s)


def test_remaining_distance_follows_the_legs_after_the_nearest_one():
    corner = point(ORIGIN, 90.0, 4_000)
    end = point(corner, 0.0, 6_000)
    on_second_leg = point(corner, 0.0, 1_500)
    eta = estimate_eta([ORIGIN, corner, end], flying([15.0] * 30, on_second_leg), NOW)
    assert eta.distance_total_m == pytest.approx(10_000, rel=1e-3)
    assert eta.remaining_m == pytest.approx(4_500, rel=1e-3)
    assert eta.progress == pytest.approx(0.55, abs=1e-3)
    on_first_leg = point(ORIGIN, 90.0, 1_000)
    eta = estimate_eta([ORIGIN, corner, end], flying([15.0] * 30, on_first_leg), NOW)
    assert eta.remaining_m == pytest.approx(9_000, rel=1e-3)


def test_speed_is_the_time_weighted_mean_over_the_smoothing_window():
    # Samples at -119 s .. 0 s: 10 m/s up to -60 s, then 20 m/s; each holds until the next.
    track = flying([10.0] * 60 + [20.0] * 60)
    # [-60 s, 0]: 1 s at 10 m/s (the -60 s sample), 59 s at 20 m/s.
    minute = estimate_eta([ORIGIN, DESTINATION], track, NOW)
    assert minute.speed_mps == pytest.approx((1 * 10 + 59 * 20) / 60)
    # [-120 s, 0], covered from -119 s: 60 s at 10 m/s, 59 s at 20 m/s.
    wide = estimate_eta([ORIGIN, DESTINATION], track, NOW, smoothing_s=120)
    assert wide.speed_mps == pytest.approx((60 * 10 + 59 * 20) / 119)
    # A fast sample long before the window counts only for the second it still held.
    early = [sample(200, MIDPOINT, 50.0, seq=0), *flying([20.0] * 60)]
    assert estimate_eta([ORIGIN, DESTINATION], early, NOW).speed_mps == pytest.approx(
        (1 * 50 + 59 * 20) / 60)


def test_samples_after_now_are_ignored():
    future = sample(-5, DESTINATION, 100.0, seq=99)
    eta = estimate_eta([ORIGIN, DESTINATION], [*flying([20.0] * 60), future], NOW)
    assert eta.remaining_m == pytest.approx(5_000, rel=1e-3)
    assert eta.speed_mps == pytest.approx(20.0)


def test_climbing_without_a_cruise_speed_has_no_eta():
    eta = estimate_eta([ORIGIN, DESTINATION], flying([0.0] * 30, ORIGIN), NOW)
    assert (eta.eta_s, eta.arrival_at) == (None, None)
    assert eta.progress == pytest.approx(0.0, abs=1e-6)
    with_cruise = estimate_eta([ORIGIN, DESTINATION], flying([0.0] * 30, ORIGIN), NOW,
                               cruise_speed_mps=18.0)
    assert with_cruise.eta_s == pytest.approx(10_000 / 18.0, rel=1e-3)
    assert with_cruise.speed_mps == 0.0


def test_before_any_telemetry_the_whole_route_remains():
    eta = estimate_eta([ORIGIN, DESTINATION], [], NOW, cruise_speed_mps=20.0)
    assert eta.remaining_m == pytest.approx(10_000, rel=1e-6) and eta.progress == 0.0
    assert eta.eta_s == pytest.approx(500, rel=1e-3)


def test_a_stale_position_is_flown_on_from_its_own_time():
    track = [sample(10 + i, MIDPOINT, 20.0, seq=60 - i) for i in range(60)]  # last seen 10 s ago
    eta = estimate_eta([ORIGIN, DESTINATION], track, NOW)
    assert eta.eta_s == pytest.approx(240, rel=0.01)


def eta_of(seconds: float) -> Eta:
    return Eta(remaining_m=seconds * 20, speed_mps=20.0, eta_s=seconds,
               arrival_at=NOW + timedelta(seconds=seconds), progress=0.5,
               distance_total_m=10_000)


def test_a_breach_is_predicted_when_arrival_plus_receipt_passes_the_deadline():
    deadline = NOW + timedelta(minutes=9)  # now is 36 min into a 45 min budget
    # 250 s to landing + 4 min to receipt = 8 min 10 s: in time.
    assert not predicted_breach(eta_of(250), deadline, after_landing_min=4)
    # + 5 min to receipt = 9 min 10 s: late, and known 9 minutes before the deadline.
    assert predicted_breach(eta_of(250), deadline, after_landing_min=5)
    # Arriving exactly at the deadline is not a breach.
    assert not predicted_breach(eta_of(240), deadline, after_landing_min=5)


def test_no_prediction_without_an_eta():
    unknown = Eta(5_000, 0.0, None, None, 0.5, 10_000)
    assert not predicted_breach(unknown, NOW - timedelta(minutes=1), after_landing_min=5)


def test_the_estimate_and_the_prediction_together():
    deadline = NOW + timedelta(minutes=6)
    eta = estimate_eta([ORIGIN, DESTINATION], flying([20.0] * 60), NOW)  # about 250 s
    assert predicted_breach(eta, deadline, after_landing_min=2.5)  # 250 s + 150 s > 360 s
    assert not predicted_breach(eta, deadline, after_landing_min=1.5)  # 250 s + 90 s < 360 s
