"""A specimen's chain of custody from its stored handovers and the status of its flights.

Like flights, the status is a pure function of the set of facts: duplicates (same event_id)
count once and the handovers are replayed in event-time order, with the order of the chain
(collected, packed, loaded, unloaded, received, rejected) settling equal times. Clocks of
staff scanners and drones differ by up to a minute or two, so an event may carry a time on
the wrong side of its neighbour; the rules below are written to stay sensible when it does.
Every fact is kept: what breaks a custody rule is marked (`anomalies`, `custody_gaps`, the
`misrouted` state), never dropped and never silently believed (docs/contract.md, "Custody
rules"; who may record what is decided at the entrance by `domain/custody_rules.py`).

Decisions:
- Closing: a receipt or rejection *at the destination* closes the specimen. The first of
  each kind, in the order dronelog received them, sets its time for good: a second receipt
  or rejection is an anomaly, not an update, and a receipt after a rejection does not
  reopen it. A rejection after a receipt (haemolysis found at the bench) makes it
  `rejected`; a rejected specimen never counts as on time.
- Misrouted: a receipt or rejection anywhere else never closes the specimen. It is kept,
  the specimen becomes `misrouted` at that site (open, an alert to both sites) until later
  steps move it on; after it was closed at its destination, it is an anomaly.
- in transit: loaded onto a flight that has not ended (planned, airborne, diverted, or
  not known yet).
- arrived: unloaded at the destination, or its flight landed at the destination and it is
  not unloaded yet.
- A specimen set down anywhere else (its flight diverted to an alternate or returned home,
  unloaded there or not yet) waits for another flight: state `packed`, site_id = that site.
  A flight aborted before take-off leaves it `packed` where it was loaded; aborted at a site,
  `packed` there; aborted after take-off anywhere else (a landing in a field) leaves its
  location unknown: state `location_unknown`, no site.
- Seals are kept per container and flight: the seal found on a container is compared with
  the seal that container was packed with before it was loaded onto that flight, so a
  re-pack into another box, even timed on the wrong side of an unload by a drone's clock,
  never looks like a broken seal.
- Impossible orders (a step timed before an earlier step of the chain by more than
  `ORDER_TOLERANCE`, an unload from a flight it was never loaded on, a step after the
  closing one) are anomalies.
- The destination is `destination_site_id` when given, else the planned destination of the
  flight concerned; when neither is known, an unload, a landing or a receipt counts as an
  arrival.
- A specimen loaded again follows its last flight: flight_id, loaded_at, took_off_at,
  landed_at and unloaded_at all describe that flight. collected_at is the first collection;
  packed_at is the latest.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dronelog.domain.custody_rules import LAB_STEPS, ORDER_TOLERANCE, stored_first
from dronelog.domain.facts import CustodyFact
from dronelog.domain.flights import FlightState, FlightStatus


class SpecimenState(StrEnum):
    COLLECTED = "collected"
    PACKED = "packed"
    IN_TRANSIT = "in_transit"
    ARRIVED = "arrived"
    MISROUTED = "misrouted"
    LOCATION_UNKNOWN = "location_unknown"
    RECEIVED = "received"
    REJECTED = "rejected"


# The chain of custody in order; a step present with an earlier one missing is a gap.
CHAIN = ("collected", "packed", "loaded", "unloaded", "received")
_RANK = {kind: rank for rank, kind in enumerate((*CHAIN, "rejected"))}
_FINAL = frozenset({SpecimenState.RECEIVED, SpecimenState.REJECTED})


@dataclass(frozen=True)
class SpecimenStatus:
    barcode: str
    state: SpecimenState
    collected_at: datetime | None
    packed_at: datetime | None
    loaded_at: datetime | None
    took_off_at: datetime | None
    landed_at: datetime | None
    unloaded_at: datetime | None
    received_at: datetime | None
    rejected_at: datetime | None
    rejection_reason: str | None
    container_id: str | None
    seal_packed: str | None
    seal_found: str | None
    flight_id: str | None
    site_id: str | None
    custody_gaps: tuple[str, ...]
    anomalies: tuple[str, ...] = ()
    first_event_at: datetime | None = None  # the earliest step (the clock's start if not collected)

    @property
    def final(self) -> bool:
        """Received or rejected at its destination: the lab has decided."""
        return self.state in _FINAL

    @property
    def has_custody_gap(self) -> bool:
        return bool(self.custody_gaps)

    @property
    def seal_changed(self) -> bool:
        return any(gap.startswith("seal changed") for gap in self.custody_gaps)


def _custody_key(fact: CustodyFact) -> tuple:
    if fact.kind not in _RANK:
        raise ValueError(f"unknown custody event kind {fact.kind!r} ({fact.event_id})")
    return fact.event_time, _RANK[fact.kind], fact.event_id


def custody_order(custody: Iterable[CustodyFact]) -> list[CustodyFact]:
    """The handovers once each (by event_id), in the order they happened."""
    seen: set[str] = set()
    unique = []
    for fact in sorted(custody, key=_custody_key):
        if fact.event_id not in seen:
            seen.add(fact.event_id)
            unique.append(fact)
    return unique


def specimen_status(custody: Iterable[CustodyFact], flights: Mapping[str, FlightStatus], *,
                    destination_site_id: str | None = None) -> SpecimenStatus | None:
    """Where the specimen is in its chain of custody, or None when nothing is known of it.

    `flights` maps flight ids to their status (those not in it are taken as not landed yet).
    """
    ordered = custody_order(custody)
    if not ordered:
        return None
    barcodes = {f.barcode for f in ordered}
    if len(barcodes) > 1:
        raise ValueError(f"custody facts of more than one specimen: {', '.join(sorted(barcodes))}")

    def destination_of(flight_id: str | None) -> str | None:
        flight = flights.get(flight_id) if flight_id else None
        return destination_site_id or (flight.planned_destination_site_id if flight else None)

    last_loaded = next((f.flight_id for f in reversed(ordered) if f.kind == "loaded"), None)
    closing = _closing(ordered, destination_of(last_loaded))

    state: SpecimenState | None = None
    site_id = container_id = None
    flight_id = None  # the flight it was last loaded onto (or unloaded from, if never loaded)
    times: dict[str, datetime] = {}
    loaded_at: dict[str | None, datetime] = {}
    unloaded_at: dict[str | None, datetime] = {}
    seals = _Seals()

    for fact in ordered:
        if fact.kind == "collected":
            times.setdefault("collected", fact.event_time)
        elif fact.kind not in LAB_STEPS:
            times[fact.kind] = fact.event_time
        else:
            times.setdefault(fact.kind, fact.event_time)
        container_id = fact.container_id or container_id
        seals.see(fact, container_id)
        if fact.kind == "loaded":
            flight_id = fact.flight_id
            loaded_at[fact.flight_id] = fact.event_time
        elif fact.kind == "unloaded":
            unloaded_at[fact.flight_id] = fact.event_time
            if not loaded_at:
                flight_id = fact.flight_id
            elif fact.flight_id != flight_id:
                continue  # from an earlier flight, timed late by a drone's clock

        if fact.kind in LAB_STEPS:
            if fact.event_id in closing.misplaced:
                state, site_id = SpecimenState.MISROUTED, fact.site_id
        elif fact.kind == "collected":
            state = state or SpecimenState.COLLECTED
            site_id = site_id or fact.site_id
        elif fact.kind == "packed":
            state, site_id = SpecimenState.PACKED, fact.site_id
        elif fact.kind == "loaded":
            state, site_id = SpecimenState.IN_TRANSIT, fact.site_id
        else:  # unloaded
            destination = destination_of(fact.flight_id)
            arrived = destination is None or fact.site_id == destination
            state = SpecimenState.ARRIVED if arrived else SpecimenState.PACKED
            site_id = fact.site_id

    flight = flights.get(flight_id) if flight_id else None
    if state is SpecimenState.IN_TRANSIT and flight is not None and flight.ended:
        state, site_id = _set_down(flight, site_id, destination_of(flight_id))
    if closing.rejected is not None:
        state, site_id = SpecimenState.REJECTED, closing.rejected.site_id
    elif closing.received is not None:
        state, site_id = SpecimenState.RECEIVED, closing.received.site_id

    anomalies = closing.anomalies + _order_anomalies(ordered, closing)
    return SpecimenStatus(
        barcode=ordered[0].barcode,
        state=state,
        collected_at=times.get("collected"),
        packed_at=times.get("packed"),
        loaded_at=loaded_at.get(flight_id),
        took_off_at=flight.took_off_at if flight else None,
        landed_at=flight.landed_at if flight else None,
        unloaded_at=unloaded_at.get(flight_id),
        received_at=closing.received.event_time if closing.received else None,
        rejected_at=closing.rejected.event_time if closing.rejected else None,
        rejection_reason=closing.rejected.reason if closing.rejected else None,
        container_id=container_id,
        seal_packed=seals.expected_for(flight_id, seals.loaded_container.get(flight_id)
                                       or container_id),
        seal_found=seals.found,
        flight_id=flight_id,
        site_id=site_id,
        custody_gaps=(*_missing_steps(times.keys()), *seals.changes),
        anomalies=tuple(anomalies),
        first_event_at=ordered[0].event_time,
    )


def _set_down(flight: FlightStatus, loaded_site: str | None, destination: str | None
              ) -> tuple[SpecimenState | None, str | None]:
    """Where a specimen on a flight that has ended is."""
    if flight.state is FlightState.ABORTED:
        if flight.took_off_at is None:
            return SpecimenState.PACKED, loaded_site
        if flight.landed_site_id is None:
            return SpecimenState.LOCATION_UNKNOWN, None
    site_id = flight.landed_site_id or loaded_site
    at_destination = (site_id == destination if destination is not None
                      else flight.state is FlightState.LANDED)
    return (SpecimenState.ARRIVED if at_destination else SpecimenState.PACKED), site_id


@dataclass
class _Closing:
    received: CustodyFact | None = None
    rejected: CustodyFact | None = None
    misplaced: frozenset[str] = frozenset()  # event ids of receipts and rejections elsewhere
    anomalies: list[str] | None = None


def _closing(ordered: list[CustodyFact], destination: str | None) -> _Closing:
    """The receipt and rejection that close the specimen: at its destination, the first of
    each kind as dronelog received them. Every other one is an anomaly or a misroute."""
    finals = sorted((f for f in ordered if f.kind in LAB_STEPS),
                    key=lambda f: stored_first(f.received_at, f.event_time, f.event_id))
    result, misplaced, anomalies = _Closing(), set(), []
    for fact in finals:
        at_destination = destination is None or fact.site_id == destination
        closed = result.received or result.rejected
        if not at_destination:
            if closed is not None:
                anomalies.append(f"{fact.kind} at {fact.site_id} after it was closed at "
                                 f"{closed.site_id}")
            else:
                misplaced.add(fact.event_id)
                anomalies.append(f"{fact.kind} at {fact.site_id}, not at its destination "
                                 f"{destination}")
        elif fact.kind == "received":
            if result.received is not None:
                anomalies.append(f"second receipt at {fact.site_id} "
                                 f"({_clock(fact.event_time)}); the first stands "
                                 f"({_clock(result.received.event_time)})")
            elif result.rejected is not None:
                anomalies.append(f"received at {fact.site_id} after its rejection; it stays "
                                 "rejected")
            else:
                result.received = fact
        elif result.rejected is not None:
            anomalies.append(f"second rejection at {fact.site_id} ({fact.reason}); the first "
                             f"stands ({result.rejected.reason})")
        else:
            result.rejected = fact
    result.misplaced, result.anomalies = frozenset(misplaced), anomalies
    return result


def _order_anomalies(ordered: list[CustodyFact], closing: _Closing) -> list[str]:
    """Steps timed before an earlier step of the chain beyond clock skew, unloads from
    flights never loaded, and steps long after the specimen was closed."""
    first: dict[str, CustodyFact] = {}
    loaded_on: dict[str | None, CustodyFact] = {}
    for fact in ordered:
        first.setdefault(fact.kind, fact)
        if fact.kind == "loaded":
            loaded_on.setdefault(fact.flight_id, fact)
    closed = [f for f in (closing.received, closing.rejected) if f is not None]
    if closed:
        first["closing"] = min(closed, key=lambda f: f.event_time)
    anomalies = []
    pairs = [("packed", "collected"), ("loaded", "packed"), ("loaded", "collected"),
             ("closing", "collected")]
    for later, earlier in pairs:
        if later in first and earlier in first:
            _before(first[later], first[earlier], anomalies)
    for fact in ordered:
        if fact.kind == "unloaded":
            loaded = loaded_on.get(fact.flight_id)
            if loaded is not None:
                _before(fact, loaded, anomalies)
            elif loaded_on:
                anomalies.append(f"unloaded at {fact.site_id} from flight {fact.flight_id}, "
                                 "which it was never loaded on")
        elif closed and fact.kind in ("packed", "loaded") and (
                fact.event_time > first["closing"].event_time + ORDER_TOLERANCE):
            anomalies.append(f"{fact.kind} at {fact.site_id} "
                             f"{_minutes(fact.event_time - first['closing'].event_time)} min "
                             f"after it was {first['closing'].kind}")
    return anomalies


def _before(later: CustodyFact, earlier: CustodyFact, anomalies: list[str]) -> None:
    if later.event_time < earlier.event_time - ORDER_TOLERANCE:
        kind = "received or rejected" if later.kind in LAB_STEPS else later.kind
        anomalies.append(f"{kind} at {later.site_id} "
                         f"{_minutes(earlier.event_time - later.event_time)} min before "
                         f"{earlier.kind}: impossible order (or clocks that far apart)")


class _Seals:
    """Seals per container, and the seal each container had when it was loaded onto a flight."""

    def __init__(self) -> None:
        self.packed: dict[str | None, str] = {}  # container -> latest seal packed with
        self.at_loading: dict[tuple[str | None, str | None], str] = {}  # (flight, container)
        self.loaded_container: dict[str | None, str | None] = {}  # flight -> container
        self.found: str | None = None
        self.changes: list[str] = []

    def expected_for(self, flight_id: str | None, container_id: str | None) -> str | None:
        return self.at_loading.get((flight_id, container_id), self.packed.get(container_id))

    def see(self, fact: CustodyFact, container_id: str | None) -> None:
        if fact.kind == "packed" and fact.seal_id:
            self.packed[fact.container_id] = fact.seal_id
        elif fact.kind == "loaded":
            self.loaded_container[fact.flight_id] = fact.container_id
            if fact.container_id in self.packed:
                self.at_loading[(fact.flight_id, fact.container_id)] = (
                    self.packed[fact.container_id])
        elif fact.kind in ("unloaded", "received") and fact.seal_id:
            container = fact.container_id or container_id
            flight = (fact.flight_id if fact.kind == "unloaded"
                      else next((f for f, c in reversed(self.loaded_container.items())
                                 if c == container), None))
            expected = self.expected_for(flight, container)
            self.found = fact.seal_id
            change = f"seal changed on {container}: packed {expected}, found {fact.seal_id}"
            if expected and fact.seal_id != expected and change not in self.changes:
                self.changes.append(change)


def problems(state: str, excursion: bool, custody_gaps: list[str], anomalies: list[str],
             description_conflicts: list[str], description_source: str, *,
             stability_exceeded: bool) -> list[str]:
    """What the bench must see before it receives a specimen, as codes the screens name in
    the user's language: every open problem, none hidden behind a green 'normal'. A
    specimen past its stability (domain/stability.py) is rejected or collected again."""
    found = []
    if state in ("misrouted", "location_unknown"):
        found.append(state)
    if stability_exceeded:
        found.append("stability_exceeded")
    if excursion:
        found.append("excursion")
    if any(gap.startswith("seal changed") for gap in custody_gaps):
        found.append("seal_changed")
    if any(not gap.startswith("seal changed") for gap in custody_gaps):
        found.append("custody_gap")
    if anomalies:
        found.append("custody_anomaly")
    if description_conflicts:
        found.append("description_conflict")
    if description_source in ("receipt", "none"):
        found.append("described_at_receipt" if description_source == "receipt"
                     else "undescribed")
    return found


def _missing_steps(present: Iterable[str]) -> list[str]:
    """Each step of the chain missing before a later one, named against the first later step
    present ("received without a loaded step")."""
    present = set(present)
    gaps = []
    for index, missing in enumerate(CHAIN):
        later = next((step for step in CHAIN[index + 1:] if step in present), None)
        if missing not in present and later is not None:
            article = "an" if missing[0] in "aeiou" else "a"
            gaps.append(f"{later} without {article} {missing} step")
    return gaps


def _minutes(delta) -> str:
    return f"{delta.total_seconds() / 60:.1f}"


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S UTC")
