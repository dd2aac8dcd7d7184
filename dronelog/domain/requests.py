"""Transport requests: a site asks for its sealed boxes to be carried; a dispatcher assigns a
drone (or hands the boxes to a ground courier); the boxes are picked up and delivered.

    requested ──assign──▶ assigned ──pick_up──▶ picked_up ──deliver──▶ delivered
        │  ▲                 │  │ reassign (same state, new flight)
        │  └──── (none) ─────┘  │
        ├──cancel──▶ cancelled ◀┤ cancel
        └──to_courier──▶ courier ◀── to_courier (from assigned too)
                           │
                           └──pick_up──▶ picked_up (carrier: courier) ──deliver──▶ delivered

Once the boxes are picked up the request can no longer be reassigned, cancelled or handed to
a courier: they are on their way, and what happens to them is the custody record's. A ground
courier's handovers are not custody events yet (the contract's actors are staff, drones and
devices): the request's change log says who carried the boxes, and their custody goes on at
the destination with `received` (docs/dispatch.md, "A ground courier's custody").

Pure: the caller passes the time; `transition` returns the new request and the change to
record (the `request_change` row that the notifications route), or a refusal.
"""

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class RequestState(StrEnum):
    REQUESTED = "requested"
    ASSIGNED = "assigned"
    COURIER = "courier"  # handed to a ground courier, waiting for pickup
    PICKED_UP = "picked_up"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Action(StrEnum):
    ASSIGN = "assign"
    REASSIGN = "reassign"
    TO_COURIER = "to_courier"
    PICK_UP = "pick_up"
    DELIVER = "deliver"
    CANCEL = "cancel"


S = RequestState
# from which states each action may be taken, and the state it leads to
ALLOWED: dict[Action, tuple[frozenset[RequestState], RequestState | None]] = {
    Action.ASSIGN: (frozenset({S.REQUESTED}), S.ASSIGNED),
    Action.REASSIGN: (frozenset({S.ASSIGNED}), S.ASSIGNED),
    Action.TO_COURIER: (frozenset({S.REQUESTED, S.ASSIGNED}), S.COURIER),
    Action.PICK_UP: (frozenset({S.ASSIGNED, S.COURIER}), S.PICKED_UP),
    Action.DELIVER: (frozenset({S.PICKED_UP}), S.DELIVERED),
    Action.CANCEL: (frozenset({S.REQUESTED, S.ASSIGNED, S.COURIER}), S.CANCELLED),
}
FINAL = frozenset({S.DELIVERED, S.CANCELLED})
OPEN = frozenset(RequestState) - FINAL
PRIORITIES = ("stat", "urgent", "routine")  # the contract's priorities, most urgent first


@dataclass(frozen=True)
class TransportRequest:
    id: str
    origin_site_id: str
    destination_site_id: str
    priority: str
    requested_at: datetime
    ready_at: datetime
    state: RequestState = S.REQUESTED
    carrier: str | None = None  # "drone" or "courier" once assigned or handed over
    drone_id: str | None = None
    flight_id: str | None = None
    courier_id: str | None = None
    picked_up_at: datetime | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class Step:
    """What a transition is asked to do, with what it names."""

    action: Action
    at: datetime
    drone_id: str | None = None
    flight_id: str | None = None
    courier_id: str | None = None


@dataclass(frozen=True)
class Change:
    """One recorded transition: the row the notifications read (`request_change`)."""

    request_id: str
    action: Action
    from_state: RequestState
    to_state: RequestState
    at: datetime


@dataclass(frozen=True)
class Refused:
    reason: str


def transition(request: TransportRequest, step: Step) -> tuple[TransportRequest, Change] | Refused:
    """The request after `step`, and the change to record; or why the step is refused."""
    sources, target = ALLOWED[step.action]
    if request.state not in sources:
        return Refused(f"a {request.state.value} request cannot be {_done(step.action)}; "
                       f"only a request that is {' or '.join(sorted(s.value for s in sources))}")
    if step.action in (Action.ASSIGN, Action.REASSIGN):
        if not (step.drone_id and step.flight_id):
            return Refused("an assignment names a drone and its flight")
        if step.action is Action.REASSIGN and (step.drone_id, step.flight_id) == (
                request.drone_id, request.flight_id):
            return Refused("a reassignment names another drone or flight")
        after = replace(request, state=target, carrier="drone", drone_id=step.drone_id,
                        flight_id=step.flight_id)
    elif step.action is Action.TO_COURIER:
        if not step.courier_id:
            return Refused("a hand-over to a courier names the courier")
        after = replace(request, state=target, carrier="courier", courier_id=step.courier_id,
                        drone_id=None, flight_id=None)
    elif step.action is Action.PICK_UP:
        after = replace(request, state=target, picked_up_at=step.at)
    elif step.action is Action.DELIVER:
        after = replace(request, state=target, delivered_at=step.at)
    else:
        after = replace(request, state=target)
    return after, Change(request.id, step.action, request.state, after.state, step.at)


def _done(action: Action) -> str:
    return {Action.ASSIGN: "assigned", Action.REASSIGN: "reassigned",
            Action.TO_COURIER: "handed to a courier", Action.PICK_UP: "picked up",
            Action.DELIVER: "delivered", Action.CANCEL: "cancelled"}[action]


# --- the queue --------------------------------------------------------------------------------


def waiting(request: TransportRequest, now: datetime) -> timedelta:
    """How long the boxes have waited: from the ready time (not before), never negative."""
    return max(timedelta(0), now - request.ready_at)


def queue_order(requests: list[TransportRequest], now: datetime) -> list[TransportRequest]:
    """The dispatcher's queue: open requests not yet on their way, most urgent first, then
    those waiting longest (ready earliest), then by id so the order is stable."""
    rank = {p: i for i, p in enumerate(PRIORITIES)}
    pending = [r for r in requests if r.state in (S.REQUESTED, S.ASSIGNED, S.COURIER)]
    return sorted(pending, key=lambda r: (rank.get(r.priority, len(PRIORITIES)),
                                          r.ready_at, r.id))


def service_level(request: TransportRequest) -> timedelta | None:
    """Request to pickup: the request's own service level; None until picked up. A request
    made ahead of its ready time is measured from the ready time."""
    if request.picked_up_at is None:
        return None
    return max(timedelta(0), request.picked_up_at - max(request.requested_at,
                                                        request.ready_at))


# --- fixed daily departures -------------------------------------------------------------------


@dataclass(frozen=True)
class Departure:
    """A fixed daily departure on a route: boxes packed by the cut-off go with it."""

    origin_site_id: str
    destination_site_id: str
    departs: time  # local time at the network's zone
    cutoff_min: int  # the cut-off is this many minutes before the departure

    def on(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The departure and its cut-off on `day`, as aware datetimes in `zone`."""
        leaves = datetime.combine(day, self.departs, tzinfo=zone)
        return leaves, leaves - timedelta(minutes=self.cutoff_min)

    def key(self, day: date) -> str:
        """The identity of one day's departure, so the scheduler creates it once."""
        return (f"{self.origin_site_id}-{self.destination_site_id}-"
                f"{day.strftime('%Y%m%d')}-{self.departs.strftime('%H%M')}")


def due_departures(departures: list[Departure], now: datetime, zone: ZoneInfo
                   ) -> list[tuple[Departure, datetime]]:
    """The departures whose request is due at `now`: their cut-off has come (a cut-off at
    12:00 is due at 12:00:00 exactly) and they have not left yet. A scheduler that was down
    over the cut-off still creates them until the departure; one that was down past the
    departure does not create a request for a flight that is gone. Yesterday's, today's
    and tomorrow's: a cut-off may fall on the day before its departure (00:10, cut-off
    23:40), and a departure may leave after midnight of the day of its cut-off."""
    today = now.astimezone(zone).date()
    due = []
    for departure in departures:
        for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
            leaves, cutoff = departure.on(day, zone)
            if cutoff <= now < leaves:
                due.append((departure, leaves))
    return due


def catches(ready_at: datetime, departure: Departure, day: date, zone: ZoneInfo) -> bool:
    """A box ready at `ready_at` goes with `departure` on `day` if it is ready by the
    cut-off (inclusive)."""
    return ready_at <= departure.on(day, zone)[1]


# --- following the assigned flight ------------------------------------------------------------


@dataclass(frozen=True)
class FlightProgress:
    """What the flight tracking says of a request's flight."""

    flight_id: str
    took_off_at: datetime | None
    landed_at: datetime | None
    landed_site_id: str | None


def follow_flight(request: TransportRequest, flight: FlightProgress) -> Step | None:
    """The step the request's own flight implies, if any: its take-off picks the boxes up;
    its landing at the request's destination delivers them. A landing elsewhere (a diversion,
    a return home) delivers nothing: the dispatcher decides what follows. A flight that is
    no longer the request's (reassigned) is not followed."""
    if request.carrier != "drone" or request.flight_id != flight.flight_id:
        return None
    if request.state is S.ASSIGNED and flight.took_off_at is not None:
        return Step(Action.PICK_UP, flight.took_off_at)
    if (request.state is S.PICKED_UP and flight.landed_at is not None
            and flight.landed_site_id == request.destination_site_id):
        return Step(Action.DELIVER, flight.landed_at)
    return None
