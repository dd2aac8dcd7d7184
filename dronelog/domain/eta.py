"""When a flight will arrive: remaining distance along its route over a smoothed ground
speed, and whether that arrival, plus the time from landing to lab receipt, misses the
turnaround deadline."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from geopy.distance import geodesic

from dronelog.domain.facts import TelemetryFact
from dronelog.domain.telemetry_rules import LatLon, nearest_leg


@dataclass(frozen=True)
class Eta:
    remaining_m: float
    speed_mps: float  # smoothed ground speed
    eta_s: float | None  # None when too slow to say (climbing, hovering) and no cruise speed
    arrival_at: datetime | None
    progress: float  # 0 at the origin, 1 at the destination
    distance_total_m: float


def estimate_eta(route: Sequence[LatLon], track: Sequence[TelemetryFact], now: datetime,
                 smoothing_s: float = 60.0, min_speed_mps: float = 1.0, *,
                 cruise_speed_mps: float | None = None) -> Eta:
    """The ETA of a flight along `route` ([origin, waypoints..., destination], (lat, lon))
    from its `track` (this flight's telemetry; samples after `now` are ignored).

    Remaining distance: geodesic from the latest position to the end of the route leg it is
    nearest to, then the rest of the legs. Speed: the time-weighted mean ground speed over the
    last smoothing_s (each sample holds until the next, the last until now). Below
    min_speed_mps the aircraft is climbing or hovering, and cruise_speed_mps, if given, is
    used instead. The arrival counts from the latest sample's time, not from now: with a late
    or lost sample the aircraft has flown on meanwhile (the ETA is then at least 0).
    With no telemetry yet, the whole route remains, from now.
    """
    if len(route) < 2:
        raise ValueError("a route needs at least two points")
    legs_m = [geodesic(a, b).meters for a, b in zip(route, route[1:], strict=False)]
    total = sum(legs_m)
    samples = sorted((s for s in track if s.event_time <= now),
                     key=lambda s: (s.event_time, s.seq))
    if samples:
        latest = samples[-1]
        here = (latest.lat, latest.lon)
        leg, _ = nearest_leg(here, route)
        remaining = geodesic(here, route[leg + 1]).meters + sum(legs_m[leg + 1:])
        speed, position_at = _smoothed_speed(samples, now, smoothing_s), latest.event_time
    else:
        remaining, speed, position_at = total, 0.0, now
    pace = speed if speed >= min_speed_mps else cruise_speed_mps
    eta_s = arrival_at = None
    if pace:
        arrival_at = max(now, position_at + timedelta(seconds=remaining / pace))
        eta_s = (arrival_at - now).total_seconds()
    progress = min(1.0, max(0.0, 1.0 - remaining / total)) if total > 0 else 1.0
    return Eta(remaining, speed, eta_s, arrival_at, progress, total)


def _smoothed_speed(samples: Sequence[TelemetryFact], now: datetime, window_s: float) -> float:
    """Time-weighted mean ground speed over [now - window_s, now] of samples in time order;
    the latest sample's speed when they span no time."""
    start = now - timedelta(seconds=window_s)
    weighted = covered = 0.0
    ends = [s.event_time for s in samples[1:]] + [now]
    for sample, end in zip(samples, ends, strict=True):
        span = (end - max(sample.event_time, start)).total_seconds()
        if span > 0:
            weighted += sample.ground_speed_mps * span
            covered += span
    return weighted / covered if covered > 0 else samples[-1].ground_speed_mps


def predicted_breach(eta: Eta, deadline: datetime, after_landing_min: float) -> bool:
    """Arrival plus after_landing_min (the landed-to-received budget) passes the deadline.
    False when the ETA is unknown: a deadline already passed is a breach, not a prediction,
    and is the caller's to tell."""
    if eta.arrival_at is None:
        return False
    return eta.arrival_at + timedelta(minutes=after_landing_min) > deadline
