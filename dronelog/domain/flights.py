"""A flight's lifecycle from its stored events: planned → airborne → landed, or aborted,
diverted on the way, or returned home.

Events arrive late, out of order and more than once, so the status is a pure function of the
set of facts: duplicates (same event_id) count once, and the facts are replayed in event-time
order, with a lifecycle rank to settle equal times. Any permutation or duplication of the
same facts gives the same status.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dronelog.domain.facts import FlightFact


class FlightState(StrEnum):
    PLANNED = "planned"
    AIRBORNE = "airborne"
    LANDED = "landed"
    ABORTED = "aborted"
    DIVERTED = "diverted"
    RETURNED_HOME = "returned_home"


# The order in which a flight's events happen; it settles events with equal event times.
_LIFECYCLE_RANK = {"planned": 0, "takeoff": 1, "diverted": 2, "aborted": 3, "landed": 4,
                   "returned_home": 5}
_ENDED = frozenset({FlightState.LANDED, FlightState.ABORTED, FlightState.RETURNED_HOME})


@dataclass(frozen=True)
class FlightStatus:
    flight_id: str
    drone_id: str
    state: FlightState
    origin_site_id: str | None
    destination_site_id: str | None  # where it is heading now: the alternate after a diversion
    planned_destination_site_id: str | None
    took_off_at: datetime | None
    landed_at: datetime | None
    landed_site_id: str | None
    diverted: bool
    last_event_time: datetime

    @property
    def in_air(self) -> bool:
        return self.state in (FlightState.AIRBORNE, FlightState.DIVERTED)

    @property
    def ended(self) -> bool:
        """Landed, aborted or returned home: no later event changes its state."""
        return self.state in _ENDED


def _lifecycle_key(fact: FlightFact) -> tuple:
    if fact.kind not in _LIFECYCLE_RANK:
        raise ValueError(f"unknown flight event kind {fact.kind!r} ({fact.event_id})")
    return fact.event_time, _LIFECYCLE_RANK[fact.kind], fact.event_id


def lifecycle_order(facts: Iterable[FlightFact]) -> list[FlightFact]:
    """The facts once each (by event_id), in the order they happened."""
    ordered = sorted(facts, key=_lifecycle_key)
    seen: set[str] = set()
    unique = []
    for fact in ordered:
        if fact.event_id not in seen:
            seen.add(fact.event_id)
            unique.append(fact)
    return unique


def flight_status(facts: Iterable[FlightFact]) -> FlightStatus | None:
    """The flight's status from its events, or None when there are none.

    The first ending (landed, aborted, returned home) is final: later events still fill in
    what is unknown (a late plan gives origin and destination) but do not change the state.
    """
    ordered = lifecycle_order(facts)
    if not ordered:
        return None
    if len({f.flight_id for f in ordered}) > 1:
        raise ValueError("facts of more than one flight: " +
                         ", ".join(sorted({f.flight_id for f in ordered})))
    state: FlightState | None = None
    origin = destination = planned_destination = landed_site = None
    took_off_at = landed_at = None
    diverted = False
    for fact in ordered:
        match fact.kind:
            case "planned":
                origin = origin or fact.origin_site_id
                planned_destination = planned_destination or fact.destination_site_id
                if not diverted:
                    destination = planned_destination
                if state is None:
                    state = FlightState.PLANNED
            case "takeoff":
                origin = origin or fact.site_id
                took_off_at = took_off_at or fact.event_time
                if state in (None, FlightState.PLANNED):
                    state = FlightState.AIRBORNE
            case "diverted":
                if state not in _ENDED:
                    diverted = True
                    destination = fact.new_destination_site_id
                    state = FlightState.DIVERTED
            case "aborted":
                if state not in _ENDED:
                    state = FlightState.ABORTED
                    landed_site = fact.site_id  # where it ended, when that was a site
            case "landed" | "returned_home":
                if state not in _ENDED:
                    landed_at, landed_site = fact.event_time, fact.site_id
                    state = (FlightState.LANDED if fact.kind == "landed"
                             else FlightState.RETURNED_HOME)
                    if fact.kind == "returned_home":
                        origin = origin or fact.site_id

    first = ordered[0]
    return FlightStatus(
        flight_id=first.flight_id,
        drone_id=first.drone_id,
        state=state,
        origin_site_id=origin,
        destination_site_id=destination,
        planned_destination_site_id=planned_destination,
        took_off_at=took_off_at,
        landed_at=landed_at,
        landed_site_id=landed_site,
        diverted=diverted,
        last_event_time=max(f.event_time for f in ordered),
    )
