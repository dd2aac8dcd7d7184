"""What a bridge must add to an aircraft's own view to speak the contract: which dronelog
flight it is flying, at which site it took off and landed, a per-drone `seq`, and event ids.

Pure: no I/O, time comes in as a parameter. Shared by the MAVLink and the DJI bridges.

Flight ids (docs/bridges.md, "Flight ids"). An autopilot knows nothing of dronelog's flight
ids, so the bridge listens to the contract's own `planned` events on dronelog's broker (the
dispatch system or the ground station publishes them as for any drone) and keeps, per
drone, the newest plan not flown yet. At take-off:

1. of that drone's unflown plans, the one whose planned departure (or, without one, whose
   event time) is nearest the take-off names the flight, and gives the origin and
   destination when no configured site is near; plans whose time is more than
   `plan_max_age` before the take-off, and plans of flights `aborted` since, are dropped;
2. else an id the vehicle's own system gave the mission (a DJI Dock's wayline task
   `flight_id`), if it told one;
3. else `<drone>-<UTC take-off time>`, e.g. `uav-03-20261122T081231Z`.

Sites: the nearest configured site within its pad radius names where the aircraft took
off or landed. A landing at no known site (when sites are configured) ends the flight as
`aborted`, with the position in the reason; a landing at the plan's origin that is not its
destination is `returned_home`.

Event ids are UUID 5 (name-based) over what identifies the event, not random: a MAVLink
telemetry report is (drone, seq), where seq is the report period of the bridge's clock; a
DJI report is (drone, the aircraft's own timestamp); a take-off or landing is (drone,
flight); a status change is (drone, online, time). A frame that reaches the bridge twice
(two radio links into one MAVLink router, an MQTT redelivery from DJI's broker), a bridge
restarted within the same second, or two bridges run side by side for redundancy therefore
produce the same id, and dronelog stores the event once.
"""

import math
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from geopy.distance import geodesic

from dronelog.contract.messages import (
    FlightAborted,
    FlightDiverted,
    FlightLanded,
    FlightPlanned,
    FlightReturnedHome,
    FlightTakeoff,
)

# The namespace of every id a bridge derives (uuid5(NAMESPACE_URL, "urn:dronelog:bridge")).
BRIDGE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:dronelog:bridge")

log = structlog.get_logger("dronelog.bridges")


def event_id(drone_id: str, kind: str, key: str | int) -> uuid.UUID:
    """The id of the `kind` event of `drone_id` identified by `key` (seq, flight id, time)."""
    return uuid.uuid5(BRIDGE_NAMESPACE, f"{drone_id}/{kind}/{key}")


def epoch_ms(at: datetime) -> int:
    return int(round(at.timestamp() * 1000))


@dataclass(frozen=True)
class Site:
    id: str
    lat: float
    lon: float
    radius_m: float = 150.0


class SiteBook:
    """The configured sites; `at()` names the one a position is on, if any."""

    def __init__(self, sites: list[Site] | tuple[Site, ...] = ()) -> None:
        self.sites = tuple(sites)

    def __bool__(self) -> bool:
        return bool(self.sites)

    def at(self, lat: float, lon: float) -> Site | None:
        best: tuple[float, Site] | None = None
        for site in self.sites:
            distance = geodesic((site.lat, site.lon), (lat, lon)).meters
            if distance <= site.radius_m and (best is None or distance < best[0]):
                best = (distance, site)
        return best[1] if best else None


class SeqCounter:
    """`seq` from the clock: the number of whole report periods since the Unix epoch.

    It grows by one per report when reports come once a period, a gap means missing
    reports, and a restarted bridge goes on from the clock without remembering anything.
    Two reports in one period (jitter) get consecutive numbers, never the same one.
    """

    def __init__(self, period_s: float) -> None:
        if period_s <= 0:
            raise ValueError("the report period must be positive")
        self.period_ms = int(round(period_s * 1000))
        self._last: dict[str, tuple[int, int]] = {}  # drone -> (seq, time in ms)

    def slot(self, at: datetime) -> int:
        return epoch_ms(at) // self.period_ms

    def next(self, drone_id: str, at: datetime) -> int:
        ms = epoch_ms(at)
        seq = ms // self.period_ms
        last = self._last.get(drone_id)
        if last is not None and seq <= last[0] and ms > last[1]:
            seq = last[0] + 1
        if last is None or ms > last[1]:
            self._last[drone_id] = (seq, ms)
        return seq


def generated_flight_id(drone_id: str, takeoff_at: datetime) -> str:
    suffix = takeoff_at.astimezone(UTC).strftime("-%Y%m%dT%H%M%SZ")
    return drone_id[: 64 - len(suffix)] + suffix


@dataclass
class _Plan:
    flight_id: str
    origin: str | None
    destination: str | None
    known_at: datetime  # planned departure, else the plan's event time (or when told)


@dataclass
class _DroneFlights:
    plans: dict[str, _Plan] = field(default_factory=dict)  # unflown, by flight id
    hint: _Plan | None = None  # a flight id the vehicle's own system named
    current: _Plan | None = None  # the flight in the air
    flown: deque[str] = field(default_factory=lambda: deque(maxlen=64))


FlightOutcome = FlightTakeoff | FlightLanded | FlightReturnedHome | FlightAborted


class FlightBook:
    """Per drone: the plans told, the flight being flown, and the take-off and landing
    events to publish."""

    def __init__(self, sites: SiteBook | None = None,
                 plan_max_age: timedelta = timedelta(hours=12)) -> None:
        self.sites = sites or SiteBook()
        self.plan_max_age = plan_max_age
        self._drones: dict[str, _DroneFlights] = {}

    def _of(self, drone_id: str) -> _DroneFlights:
        return self._drones.setdefault(drone_id, _DroneFlights())

    # --- what dronelog and the vehicle tell ---------------------------------------------

    def plan(self, event: FlightPlanned | FlightDiverted | FlightAborted) -> None:
        """A `planned`, `diverted` or `aborted` event seen on dronelog's broker."""
        state = self._of(event.drone_id)
        if isinstance(event, FlightAborted):
            if state.plans.pop(event.flight_id, None) is not None:
                state.flown.append(event.flight_id)  # a redelivered plan must not revive it
            return
        if isinstance(event, FlightDiverted):
            for plan in (state.current, state.plans.get(event.flight_id)):
                if plan is not None and plan.flight_id == event.flight_id:
                    plan.destination = event.new_destination_site_id
            return
        if event.flight_id in state.flown or (
                state.current is not None and state.current.flight_id == event.flight_id):
            return  # a redelivered plan of a flight already flown or in the air
        state.plans[event.flight_id] = _Plan(event.flight_id, event.origin_site_id,
                                             event.destination_site_id,
                                             event.planned_departure or event.event_time)

    def hint(self, drone_id: str, flight_id: str, at: datetime) -> None:
        """A flight id the vehicle's own mission system uses (a DJI wayline task)."""
        state = self._of(drone_id)
        if flight_id in state.flown or (state.current and state.current.flight_id == flight_id):
            return
        state.hint = _Plan(flight_id, None, None, at)

    def current_flight(self, drone_id: str) -> str | None:
        state = self._drones.get(drone_id)
        return state.current.flight_id if state and state.current else None

    # --- what the aircraft does -----------------------------------------------------------

    def seen_airborne(self, drone_id: str, at: datetime) -> None:
        """The bridge first sees this drone already in the air (it started mid-flight): no
        take-off to report, but a plan known by now still names the flight."""
        state = self._of(drone_id)
        if state.current is None:
            state.current = self._choose(state, at, use_hint=True, generate=False,
                                         drone_id=drone_id)

    def takeoff(self, drone_id: str, at: datetime,
                position: tuple[float, float] | None) -> FlightTakeoff | None:
        state = self._of(drone_id)
        plan = self._choose(state, at, use_hint=True, generate=True, drone_id=drone_id)
        state.current = plan
        site = self.sites.at(*position) if position else None
        site_id = site.id if site else plan.origin
        if site_id is None:
            log.warning("take-off not reported: no configured site near the aircraft and no "
                        "plan naming the origin", drone_id=drone_id, flight_id=plan.flight_id,
                        position=position)
            return None
        return FlightTakeoff(schema_version=1, event_id=event_id(drone_id, "takeoff",
                                                                  plan.flight_id),
                             event_time=at, kind="takeoff", drone_id=drone_id,
                             flight_id=plan.flight_id, site_id=site_id)

    def landed(self, drone_id: str, at: datetime,
               position: tuple[float, float] | None) -> FlightOutcome | None:
        state = self._of(drone_id)
        plan, state.current = state.current, None
        if plan is None:
            log.warning("landing not reported: the flight is unknown (the bridge started "
                        "while the aircraft was in the air, and no plan names it)",
                        drone_id=drone_id)
            return None
        state.flown.append(plan.flight_id)
        common = dict(schema_version=1, event_time=at, drone_id=drone_id,
                      flight_id=plan.flight_id)
        site = self.sites.at(*position) if position else None
        if site is None and self.sites and position:
            lat, lon = position
            return FlightAborted(**common, event_id=event_id(drone_id, "aborted",
                                                             plan.flight_id),
                                 kind="aborted", reason=f"landed at {lat:.6f}, {lon:.6f}, "
                                 "outside every known site")
        site_id = site.id if site else plan.destination
        if site_id is None:
            log.warning("landing not reported: no configured site near the aircraft and no "
                        "plan naming the destination", drone_id=drone_id,
                        flight_id=plan.flight_id, position=position)
            return None
        if plan.origin and site_id == plan.origin and site_id != plan.destination:
            return FlightReturnedHome(**common, event_id=event_id(drone_id, "returned_home",
                                                                  plan.flight_id),
                                      kind="returned_home", site_id=site_id,
                                      reason="landed back at its origin")
        return FlightLanded(**common, event_id=event_id(drone_id, "landed", plan.flight_id),
                            kind="landed", site_id=site_id)

    def _choose(self, state: _DroneFlights, at: datetime, *, use_hint: bool, generate: bool,
                drone_id: str) -> _Plan | None:
        fresh = [p for p in state.plans.values() if at - p.known_at <= self.plan_max_age]
        state.plans = {p.flight_id: p for p in fresh}
        if fresh:
            plan = min(fresh, key=lambda p: abs((p.known_at - at).total_seconds()))
            del state.plans[plan.flight_id]
            return plan
        if use_hint and state.hint is not None and at - state.hint.known_at <= self.plan_max_age:
            plan, state.hint = state.hint, None
            return plan
        if generate:
            return _Plan(generated_flight_id(drone_id, at), None, None, at)
        return None


def heading_from_velocity(north_mps: float, east_mps: float) -> float:
    """Course over ground, degrees from true north in [0, 360)."""
    heading = math.degrees(math.atan2(east_mps, north_mps)) % 360.0
    return 0.0 if heading >= 360.0 else heading


def normalise_heading(degrees: float) -> float:
    heading = degrees % 360.0
    return 0.0 if heading >= 360.0 else heading
