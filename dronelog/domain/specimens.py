"""A specimen's chain of custody from its stored handovers and the status of its flights.

Like flights, the status is a pure function of the set of facts: duplicates (same event_id)
count once and the handovers are replayed in event-time order, with the order of the chain
(collected, packed, loaded, unloaded, received, rejected) settling equal times. Clocks of
staff scanners and drones differ by up to a minute or two, so an event may carry a time on
the wrong side of its neighbour; the rules below are written to stay sensible when it does.

Decisions:
- received and rejected are final. Between the two, the later by event time wins (a lab
  may reject a specimen it received, or receive one after a rejection is corrected).
  A handover timed after the final one (a drone's unload with a fast clock) fills in its
  time but does not change the state.
- in transit: loaded onto a flight that has not ended (planned, airborne, diverted, or
  not known yet).
- arrived: unloaded at the destination, or its flight landed at the destination and it is
  not unloaded yet.
- A specimen set down anywhere else (its flight diverted to an alternate or returned home,
  unloaded there or not yet) waits for another flight: state `packed`, site_id = that site.
  If its flight was aborted, it is `packed` where it was loaded.
- The destination is `destination_site_id` when given, else the planned destination of the
  flight concerned; when neither is known, an unload or a landing counts as an arrival.
- A specimen loaded again follows its last flight: flight_id, loaded_at, took_off_at,
  landed_at and unloaded_at all describe that flight. collected_at is the first collection;
  packed_at, received_at and rejected_at are the latest of their kind.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dronelog.domain.facts import CustodyFact
from dronelog.domain.flights import FlightState, FlightStatus


class SpecimenState(StrEnum):
    COLLECTED = "collected"
    PACKED = "packed"
    IN_TRANSIT = "in_transit"
    ARRIVED = "arrived"
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

    @property
    def final(self) -> bool:
        """Received or rejected: the lab has decided."""
        return self.state in _FINAL

    @property
    def has_custody_gap(self) -> bool:
        return bool(self.custody_gaps)

    @property
    def seal_changed(self) -> bool:
        return (self.seal_packed is not None and self.seal_found is not None
                and self.seal_packed != self.seal_found)


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

    state: SpecimenState | None = None
    site_id = container_id = seal_packed = seal_found = rejection_reason = None
    flight_id = None  # the flight it was last loaded onto (or unloaded from, if never loaded)
    times: dict[str, datetime] = {}
    loaded_at: dict[str | None, datetime] = {}
    unloaded_at: dict[str | None, datetime] = {}
    seal_gaps: list[str] = []

    for fact in ordered:
        if fact.kind == "collected":
            times.setdefault("collected", fact.event_time)
        else:
            times[fact.kind] = fact.event_time
        container_id = fact.container_id or container_id
        if fact.kind == "packed":
            seal_packed = fact.seal_id
        elif fact.kind in ("unloaded", "received") and fact.seal_id:
            seal_found = fact.seal_id
            gap = f"seal changed: packed {seal_packed}, found {seal_found}"
            if seal_packed and seal_found != seal_packed and gap not in seal_gaps:
                seal_gaps.append(gap)
        if fact.kind == "loaded":
            flight_id = fact.flight_id
            loaded_at[fact.flight_id] = fact.event_time
        elif fact.kind == "unloaded":
            unloaded_at[fact.flight_id] = fact.event_time
            if not loaded_at:
                flight_id = fact.flight_id
            elif fact.flight_id != flight_id:
                continue  # from an earlier flight, timed late by a drone's clock

        if fact.kind in ("received", "rejected"):
            state, site_id = SpecimenState(fact.kind), fact.site_id
            rejection_reason = fact.reason if fact.kind == "rejected" else None
        elif state in _FINAL:
            continue
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
        if flight.state is FlightState.ABORTED:
            state = SpecimenState.PACKED
        else:
            site_id = flight.landed_site_id or site_id
            destination = destination_of(flight_id)
            at_destination = (site_id == destination if destination is not None
                              else flight.state is FlightState.LANDED)
            state = SpecimenState.ARRIVED if at_destination else SpecimenState.PACKED

    return SpecimenStatus(
        barcode=ordered[0].barcode,
        state=state,
        collected_at=times.get("collected"),
        packed_at=times.get("packed"),
        loaded_at=loaded_at.get(flight_id),
        took_off_at=flight.took_off_at if flight else None,
        landed_at=flight.landed_at if flight else None,
        unloaded_at=unloaded_at.get(flight_id),
        received_at=times.get("received"),
        rejected_at=times.get("rejected"),
        rejection_reason=rejection_reason,
        container_id=container_id,
        seal_packed=seal_packed,
        seal_found=seal_found,
        flight_id=flight_id,
        site_id=site_id,
        custody_gaps=(*_missing_steps(times.keys()), *seal_gaps),
    )


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
