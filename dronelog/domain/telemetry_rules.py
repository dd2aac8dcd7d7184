"""Rules over a drone's telemetry: pads reached and left, distance off the route, a lost
link, battery enough to arrive, and the payload box's temperature exposure.

Each rule is a pure function of telemetry facts (and the time, where it matters), with its
thresholds as parameters. Distances are WGS 84 geodesics where they are reported (to a pad,
off the route). Where many are needed per message, a local projection sorts the near from
the far first (every sample against every pad, a position against every leg of a route) and
measures the short hops between consecutive samples: north and east metres from the
ellipsoid's meridional and prime-vertical radii at the points' mean latitude, which over
tens of metres agrees with the geodesic to well within a millimetre.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Literal

from geographiclib.geodesic import Geodesic
from geopy.distance import geodesic

from dronelog.domain.facts import SitePoint, TelemetryFact
from dronelog.domain.temperature import EXCURSION_GRACE_S

LatLon = tuple[float, float]

_WGS84 = Geodesic.WGS84
_WGS84_A = 6_378_137.0
_WGS84_E2 = 6.694_379_990_14e-3


def _metres_per_radian(lat_deg: float) -> tuple[float, float]:
    """(north, east) metres per radian of latitude and longitude at `lat_deg`."""
    sin_lat = math.sin(math.radians(lat_deg))
    w = 1 - _WGS84_E2 * sin_lat**2
    meridional = _WGS84_A * (1 - _WGS84_E2) / w**1.5
    prime_vertical = _WGS84_A / math.sqrt(w)
    return meridional, prime_vertical * math.cos(math.radians(lat_deg))


def _project(points: Sequence[LatLon], around: LatLon) -> list[tuple[float, float]]:
    """(east, north) metres of `points` from `around`, in a projection local to them all."""
    mean_lat = sum(lat for lat, _ in (*points, around)) / (len(points) + 1)
    north, east = _metres_per_radian(mean_lat)
    result = []
    for lat, lon in points:
        d_lon = (lon - around[1] + 180) % 360 - 180
        result.append((east * math.radians(d_lon), north * math.radians(lat - around[0])))
    return result


def flat_distance_m(a: LatLon, b: LatLon) -> float:
    """Distance between two nearby points by the local projection (see the module doc)."""
    ((x, y),) = _project([b], around=a)
    return math.hypot(x, y)


def nearest_leg(position: LatLon, route: Sequence[LatLon]) -> tuple[int, float]:
    """The index of the route leg (route[i] to route[i + 1]) nearest to `position`, and the
    distance in metres to its nearest point; on a tie the later leg.

    The cheap projection picks the candidate legs; over a long leg it is a metre or so off
    (a straight line in it is not quite the geodesic), so each leg within _CANDIDATE_MARGIN_M
    of the best is measured again exactly, in a projection centred on the position.
    """
    if len(route) < 2:
        raise ValueError("a route needs at least two points")
    legs = list(zip(route, route[1:], strict=False))
    rough = [_segment_distance(*_project(leg, around=position)) for leg in legs]
    candidates = [i for i, d in enumerate(rough) if d <= min(rough) + _CANDIDATE_MARGIN_M]
    exact = [(_geodesic_leg_distance_m(position, *legs[i]), i) for i in candidates]
    distance, index = min(exact, key=lambda e: (e[0], -e[1]))
    return index, distance


_CANDIDATE_MARGIN_M = 50.0


def _segment_distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance from the plane's origin to the segment a-b."""
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else min(1.0, max(0.0, -(ax * dx + ay * dy) / length2))
    return math.hypot(ax + t * dx, ay + t * dy)


def _geodesic_leg_distance_m(position: LatLon, start: LatLon, end: LatLon) -> float:
    """Distance to a leg in the azimuthal equidistant projection centred on `position`: it
    keeps distances and azimuths from the position exact, and over a few kilometres maps the
    leg's geodesic to a line straight within millimetres."""
    ends = []
    for lat, lon in (start, end):
        line = _WGS84.Inverse(*position, lat, lon, Geodesic.DISTANCE | Geodesic.AZIMUTH)
        azimuth = math.radians(line["azi1"])
        ends.append((line["s12"] * math.sin(azimuth), line["s12"] * math.cos(azimuth)))
    return _segment_distance(*ends)


def off_route_m(position: LatLon, route: Sequence[LatLon]) -> float:
    """How far `position` is from the route polyline, in metres: the distance to its nearest
    point (so past either end, the distance to that end)."""
    return nearest_leg(position, route)[1]


@dataclass(frozen=True)
class PadEvent:
    kind: Literal["arrival", "departure"]
    site_id: str
    at: datetime
    drone_id: str


def pad_transitions(track: Sequence[TelemetryFact], sites: Sequence[SitePoint],
                    hysteresis_m: float = 10.0) -> list[PadEvent]:
    """Arrivals on and departures from the sites' pads, by horizontal distance, in time order.

    A drone arrives when a sample is within the pad's radius and departs when one is more
    than radius + hysteresis_m away, so GPS noise at the edge does not flap. The first sample
    of each drone sets where it starts and is no event. Samples from several drones may be
    mixed; each drone is followed on its own.
    """
    events = []
    ordered = sorted(track, key=lambda s: (s.drone_id, s.event_time, s.seq))
    for drone_id, samples in groupby(ordered, key=lambda s: s.drone_id):
        inside: dict[str, bool] = {}
        for sample in samples:
            for site in sites:
                was_inside = inside.get(site.id)
                limit = site.pad_radius_m + (hysteresis_m if was_inside else 0.0)
                distance = _pad_distance_m((sample.lat, sample.lon), site,
                                           reach_m=site.pad_radius_m + hysteresis_m)
                inside[site.id] = distance <= limit
                if was_inside is not None and inside[site.id] != was_inside:
                    kind = "arrival" if inside[site.id] else "departure"
                    events.append(PadEvent(kind, site.id, sample.event_time, drone_id))
    return sorted(events, key=lambda e: (e.at, e.drone_id, e.kind == "arrival", e.site_id))


def _pad_distance_m(here: LatLon, site: SitePoint, reach_m: float) -> float:
    """Geodesic distance to the pad; far from it (by the cheap projection), that estimate."""
    rough = flat_distance_m((site.lat, site.lon), here)
    if rough > reach_m + 50.0:
        return rough
    return geodesic((site.lat, site.lon), here).meters


def lost_link(last_seen: datetime | None, now: datetime, airborne: bool,
              threshold_s: float = 30.0) -> bool:
    """An airborne drone not heard from for more than threshold_s (or never heard from)."""
    if not airborne:
        return False
    return last_seen is None or (now - last_seen).total_seconds() > threshold_s


def _recent(track: Iterable[TelemetryFact], now: datetime,
            window_s: float | None = None) -> list[TelemetryFact]:
    """Samples at or before `now` (and within `window_s` of it), in time order."""
    return sorted((s for s in track if s.event_time <= now
                   and (window_s is None or (now - s.event_time).total_seconds() <= window_s)),
                  key=lambda s: (s.event_time, s.seq))


def battery_needed_pct(track: Sequence[TelemetryFact], remaining_m: float, now: datetime,
                       window_s: float = 120.0, min_distance_m: float = 1000.0,
                       cruise_speed_mps: float = 3.0) -> float | None:
    """Battery percent needed to fly `remaining_m`, at the drain per metre of the cruise in
    the last window_s. Only intervals flown at cruise speed count, and their distance is
    ground speed times time: climbing and hovering drain the battery without covering ground,
    and GPS noise adds distance where there is none, either of which would make the need
    look many times larger than it is. None when the window holds less than min_distance_m
    of cruise or no drop to measure."""
    recent = _recent(track, now, window_s)
    flown = drop = 0.0
    for a, b in zip(recent, recent[1:], strict=False):
        if a.ground_speed_mps >= cruise_speed_mps and b.ground_speed_mps >= cruise_speed_mps:
            seconds = (b.event_time - a.event_time).total_seconds()
            flown += (a.ground_speed_mps + b.ground_speed_mps) / 2 * seconds
            drop += a.battery_pct - b.battery_pct
    if flown < min_distance_m or drop <= 0:
        return None
    return drop / flown * remaining_m


def low_battery(track: Sequence[TelemetryFact], remaining_m: float, now: datetime,
                reserve_pct: float = 20.0, window_s: float = 120.0) -> bool:
    """The battery now is below what the rest of the flight needs plus the reserve; when the
    need cannot be estimated yet, below the reserve alone."""
    recent = _recent(track, now)
    if not recent:
        return False
    needed = battery_needed_pct(track, remaining_m, now, window_s) or 0.0
    return recent[-1].battery_pct < needed + reserve_pct


TEMPERATURE_MAX_GAP_S = 120.0  # a reading vouches for the box this long at most


@dataclass(frozen=True)
class Exposure:
    """The payload box's temperature over a track, against an allowed range: the time known
    to be out of it, and the time nobody can tell (gaps between readings)."""

    min_c: float | None
    max_c: float | None
    seconds_out_of_range: float
    excursion: bool
    first_out_at: datetime | None
    seconds_unknown: float = 0.0


def temperature_exposure(track: Sequence[TelemetryFact], low_c: float, high_c: float,
                         grace_s: float = EXCURSION_GRACE_S,
                         max_gap_s: float = TEMPERATURE_MAX_GAP_S,
                         start: datetime | None = None, end: datetime | None = None
                         ) -> Exposure:
    """Min, max and time out of [low_c, high_c] of the samples carrying a payload temperature.

    Each reading holds until the next sample, for max_gap_s at most (the last one adds no
    time, as the simulator's ground truth counts it): the rest of a longer gap (a lost link,
    a sensor that stopped) is unknown, neither in range nor out of it, and is counted apart.
    So is a silence longer than max_gap_s between `start` (the take-off) and the first
    reading, or between the last reading and `end` (the landing), where they are given: a
    flight with no reading at all is unknown from take-off to landing. An excursion is more
    than grace_s known to be out of range in total, not necessarily in one spell: the
    simulator's rule as well. Readings at the same time are taken in (seq, value) order, so
    any order of the same samples gives the same exposure.
    """
    readings = sorted((s.event_time, s.seq, s.payload_temp_c) for s in track
                      if s.payload_temp_c is not None)
    if not readings:
        flown = (end - start).total_seconds() if start and end else 0.0
        return Exposure(None, None, 0.0, False, None, max(0.0, flown))
    unknown = sum(max(0.0, (b - a).total_seconds() - max_gap_s)
                  for a, b in ((start, readings[0][0]), (readings[-1][0], end)) if a and b)
    outside = [(t, not low_c <= value <= high_c) for t, _, value in readings]
    seconds = 0.0
    for (t1, out), (t2, _) in zip(outside, outside[1:], strict=False):
        span = (t2 - t1).total_seconds()
        held = min(span, max_gap_s)
        unknown += span - held
        if out:
            seconds += held
    first_out_at = next((t for t, out in outside if out), None)
    values = [value for _, _, value in readings]
    return Exposure(min(values), max(values), seconds, seconds > grace_s, first_out_at,
                    unknown)
