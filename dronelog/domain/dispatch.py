"""Which drone to suggest for a request: available, with battery enough for the trip with a
reserve, nearest to the boxes.

The consumption model is linear in distance (docs/dispatch.md): a trip from the drone to the
origin and on to the destination uses `pct_per_km` percent of the battery per kilometre
flown, plus `takeoff_pct` for each take-off and landing cycle (two: to the origin, then the
delivery). It must leave at least `reserve_pct` on landing. The defaults (2.7 %/km, 3 % a cycle,
reserve 20 %) match the demo fleet (RA3-class: 1,500 Wh, about 2.6 kW at 18 m/s); set them per
fleet in config/dispatch.toml. Distances are geodesic on WGS 84 (geopy), along the route's
waypoints where the route is planned.
"""

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path

from geopy.distance import geodesic

from dronelog.domain.requests import Departure

LatLon = tuple[float, float]
AT_ORIGIN_M = 100.0  # a drone this close to the origin is on its pad: no flight to get there


@dataclass(frozen=True)
class Consumption:
    pct_per_km: float = 2.7
    takeoff_pct: float = 3.0
    reserve_pct: float = 20.0

    def needed_pct(self, to_origin_m: float, route_m: float) -> float:
        cycles = 2 if to_origin_m > AT_ORIGIN_M else 1
        return (to_origin_m + route_m) / 1000 * self.pct_per_km + cycles * self.takeoff_pct


@dataclass(frozen=True)
class DroneState:
    """A drone as the dispatcher sees it: its newest report, and whether it is free."""

    drone_id: str
    position: LatLon | None
    battery_pct: float | None
    online: bool | None
    busy: bool  # on a flight, or assigned to an open request
    retired: bool = False
    registration: str | None = None


@dataclass(frozen=True)
class Suggestion:
    drone_id: str
    to_origin_m: float
    needed_pct: float
    battery_pct: float


def route_length_m(points: Sequence[LatLon]) -> float:
    return sum(geodesic(a, b).meters for a, b in zip(points, points[1:], strict=False))


def candidates(drones: Sequence[DroneState], route: Sequence[LatLon],
               consumption: Consumption) -> list[Suggestion]:
    """The drones that can fly the route now, nearest first (then most battery, then id).
    Left out: retired, offline or never heard from, busy, position or battery unknown (an
    unknown battery is not an enough battery), or short of battery for the trip and reserve."""
    route_m = route_length_m(route)
    found = []
    for drone in drones:
        if (drone.retired or drone.online is not True or drone.busy or drone.position is None
                or drone.battery_pct is None):
            continue
        to_origin = geodesic(drone.position, route[0]).meters
        needed = consumption.needed_pct(to_origin, route_m)
        if drone.battery_pct - needed >= consumption.reserve_pct:
            found.append(Suggestion(drone.drone_id, to_origin, needed, drone.battery_pct))
    return sorted(found, key=lambda s: (round(s.to_origin_m), -s.battery_pct, s.drone_id))


def suggest(drones: Sequence[DroneState], route: Sequence[LatLon],
            consumption: Consumption) -> Suggestion | None:
    found = candidates(drones, route, consumption)
    return found[0] if found else None


# --- the dispatch rules (config/dispatch.toml) ------------------------------------------------


@dataclass(frozen=True)
class DispatchRules:
    consumption: Consumption = Consumption()
    cruise_speed_mps: float = 15.0  # for the ETA of a flight that has not taken off yet
    departures: tuple[Departure, ...] = ()
    # routes (origin, destination) whose flights wait for an airspace approval reference
    approval_required: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def needs_approval(self, origin: str, destination: str) -> bool:
        return (origin, destination) in self.approval_required

    @classmethod
    def load(cls, path: Path) -> "DispatchRules":
        return cls.parse(tomllib.loads(path.read_text(encoding="utf-8")))

    @classmethod
    def from_file(cls, path: str | None) -> "DispatchRules":
        """From DRONELOG_DISPATCH_FILE; the built-in defaults (no fixed departures) without."""
        return cls.load(Path(path)) if path else cls()

    @classmethod
    def parse(cls, data: dict) -> "DispatchRules":
        known = {"consumption", "cruise_speed_mps", "route"}
        if unknown := set(data) - known:
            raise ValueError(f"unknown keys in the dispatch rules: {sorted(unknown)}")
        departures, approval = [], set()
        for route in data.get("route", []):
            origin, destination = route["origin"], route["destination"]
            if route.get("approval_required", False):
                approval.add((origin, destination))
            cutoff = int(route.get("cutoff_min", 30))
            if cutoff < 0:
                raise ValueError(f"route {origin}-{destination}: cutoff_min is negative")
            departures += [Departure(origin, destination, time.fromisoformat(hhmm), cutoff)
                           for hhmm in route.get("departures", [])]
        return cls(Consumption(**data.get("consumption", {})),
                   float(data.get("cruise_speed_mps", 15.0)), tuple(departures),
                   frozenset(approval))
