"""A specimen's journey, read from the database once for both exports.

Plain values: what the specimen is and where it stands (its `specimen` and `specimen_tracking`
rows), its handovers in the order they happened, each flight it rode (the flight's lifecycle,
derived by the same domain function that fills `flight_tracking`, and its payload-box
temperature readings), and the sites named on the way. The legs of the journey are derived
here as well.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from urllib.parse import quote
from uuid import NAMESPACE_URL, uuid5

from sqlalchemy import Connection, select

from dronelog.domain.facts import CustodyFact, FlightFact
from dronelog.domain.flights import FlightStatus, flight_status, lifecycle_order
from dronelog.domain.specimens import custody_order
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import CustodyEvent, Site, Specimen, SpecimenTracking, TelemetryPoint
from dronelog.turnaround import repository as repo

C, S, T = CustodyEvent.__table__, Specimen.__table__, SpecimenTracking.__table__
SITE, TELEMETRY = Site.__table__, TelemetryPoint.__table__
_NAMESPACE = uuid5(NAMESPACE_URL, "urn:dronelog")


def urn(kind: str, value: str) -> str:
    """The URI both exports give a thing dronelog names by its own id (a site, a specimen, a
    container, a drone, a person): `urn:dronelog:<kind>:<id>`, the id percent-encoded."""
    return f"urn:dronelog:{kind}:{quote(value, safe='')}"


def stable_uuid(*parts: str) -> str:
    """The same UUID for the same parts in every export (UUID v5)."""
    return str(uuid5(_NAMESPACE, "/".join(parts)))


@dataclass(frozen=True, slots=True)
class Handover(CustodyFact):
    recorded_at: datetime | None = None  # when dronelog stored it


@dataclass(frozen=True, slots=True)
class Reading:
    at: datetime
    temp_c: float


@dataclass(frozen=True)
class Flight:
    flight_id: str
    drone_id: str | None
    status: FlightStatus | None  # None: no flight event stored yet
    takeoff: FlightFact | None
    landing: FlightFact | None  # landed or returned home, when that ended the flight
    readings: tuple[Reading, ...]  # payload-box temperature, in time order
    last_position: tuple[float, float] | None  # lat, lon


@dataclass(frozen=True)
class SiteInfo:
    id: str
    name_zh: str
    name_en: str
    lat: float
    lon: float
    timezone: str


@dataclass
class Leg:
    """A flight the specimen rode (`flight_id`), or a move on the ground between two sites.

    `start` is the handover that began it (loaded; the last handover at the first site),
    `end` the one that ended it (unloaded, or wherever the specimen was seen next)."""

    flight_id: str | None
    start: Handover | None
    end: Handover | None = None


@dataclass(frozen=True)
class Journey:
    barcode: str
    kind: str
    blood_product: str | None
    priority: str
    temperature_class: str
    origin_site_id: str
    destination_site_id: str
    order_ref: str
    state: str
    received_at: datetime | None
    handovers: tuple[Handover, ...]
    flights: dict[str, Flight]
    sites: dict[str, SiteInfo]
    exported_at: datetime

    @cached_property
    def legs(self) -> list[Leg]:
        """Each flight, and each change of site with no flight in between, in order."""
        return split_into_legs(self.handovers)


def split_into_legs(handovers: tuple[Handover, ...]) -> list[Leg]:
    """Legs of handovers in order: a flight starts at loading and ends at unloading, or at the
    next handover of another flight or none (no unload scan: the flight brought it there); a
    handover at another site than the last, with no flight in between, ends a ground leg."""
    legs: list[Leg] = []
    aboard: Leg | None = None
    previous: Handover | None = None
    for handover in handovers:
        if aboard is not None and handover.flight_id != aboard.flight_id:
            aboard.end = handover  # off the flight with no unload scan: it was brought here
            aboard = None
        elif (aboard is None and previous is not None and handover.kind != "unloaded"
              and handover.site_id != previous.site_id):
            legs.append(Leg(None, previous, handover))
        if handover.kind == "loaded" and aboard is None:
            aboard = Leg(handover.flight_id, handover)
            legs.append(aboard)
        elif handover.kind == "unloaded":
            if aboard is None:  # no loading scan
                legs.append(Leg(handover.flight_id, None, handover))
            else:
                aboard.end = handover
            aboard = None
        previous = handover
    return legs


def read_journey(connection: Connection, barcode: str, now: datetime) -> Journey | None:
    """The journey of a tracked specimen, or None when there is none."""
    tracking = connection.execute(select(T).where(T.c.barcode == barcode)).first()
    specimen = connection.execute(select(S).where(S.c.barcode == barcode)).first()
    if tracking is None or specimen is None:
        return None
    handovers = tuple(custody_order(_handover(row) for row in connection.execute(
        select(C).where(C.c.barcode == barcode))))
    flight_ids = list(dict.fromkeys(h.flight_id for h in handovers if h.flight_id))
    drones = {h.flight_id: h.drone_id for h in handovers if h.flight_id and h.drone_id}
    flights = _flights(connection, flight_ids, drones)
    site_ids = {specimen.origin_site_id, specimen.destination_site_id,
                *(h.site_id for h in handovers)}
    for flight in flights.values():
        if flight.status is not None:
            site_ids |= {flight.status.origin_site_id, flight.status.destination_site_id,
                         flight.status.planned_destination_site_id,
                         flight.status.landed_site_id}
    return Journey(
        barcode=barcode, kind=specimen.kind, blood_product=specimen.blood_product,
        priority=specimen.priority, temperature_class=specimen.temperature_class,
        origin_site_id=specimen.origin_site_id,
        destination_site_id=specimen.destination_site_id, order_ref=specimen.order_ref,
        state=tracking.state, received_at=as_utc(tracking.received_at), handovers=handovers,
        flights=flights, sites=_sites(connection, site_ids - {None}), exported_at=now)


def _handover(row) -> Handover:
    return Handover(event_id=str(row.event_id), barcode=row.barcode, kind=row.kind,
                    site_id=row.site_id, actor_kind=row.actor_kind, actor_id=row.actor_id,
                    event_time=as_utc(row.event_time), container_id=row.container_id,
                    seal_id=row.seal_id, flight_id=row.flight_id, drone_id=row.drone_id,
                    reason=row.reason, recorded_at=as_utc(row.received_at))


def _flights(connection: Connection, flight_ids: list[str], drones: dict[str, str]
             ) -> dict[str, Flight]:
    if not flight_ids:
        return {}
    facts = repo.flight_facts(connection, flight_ids)
    readings: dict[str, list[Reading]] = defaultdict(list)
    positions: dict[str, tuple[float, float]] = {}
    rows = connection.execute(
        select(TELEMETRY.c.flight_id, TELEMETRY.c.event_time, TELEMETRY.c.payload_temp_c,
               TELEMETRY.c.lat, TELEMETRY.c.lon)
        .where(TELEMETRY.c.flight_id.in_(flight_ids)).order_by(TELEMETRY.c.event_time))
    for row in rows:
        positions[row.flight_id] = (row.lat, row.lon)
        if row.payload_temp_c is not None:
            readings[row.flight_id].append(Reading(as_utc(row.event_time), row.payload_temp_c))
    flights = {}
    for flight_id in flight_ids:
        ordered = lifecycle_order(facts.get(flight_id, []))
        status = flight_status(ordered)
        ending = next((f for f in ordered if f.kind in ("landed", "returned_home", "aborted")),
                      None)
        flights[flight_id] = Flight(
            flight_id=flight_id, drone_id=status.drone_id if status else drones.get(flight_id),
            status=status, takeoff=next((f for f in ordered if f.kind == "takeoff"), None),
            landing=ending if ending is not None and ending.kind != "aborted" else None,
            readings=tuple(readings[flight_id]), last_position=positions.get(flight_id))
    return flights


def _sites(connection: Connection, site_ids: set[str]) -> dict[str, SiteInfo]:
    rows = connection.execute(select(SITE).where(SITE.c.id.in_(sorted(site_ids))))
    return {r.id: SiteInfo(r.id, r.name_zh, r.name_en, r.lat, r.lon, r.timezone) for r in rows}
