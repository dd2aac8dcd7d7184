"""Reading stored events as domain facts, and writing the projections and job state.

SQLite hands back naive datetimes (stored in UTC); everything read here is made UTC-aware
before the domain sees it.
"""

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Table, and_, func, select

from dronelog.domain.custody_rules import Description, stored_first
from dronelog.domain.facts import CustodyFact, FlightFact, SitePoint, SpecimenFacts, TelemetryFact
from dronelog.domain.monitoring import Report, diverted_route
from dronelog.domain.telemetry_rules import LatLon
from dronelog.storage import tables
from dronelog.storage.portable import as_utc, upsert

CUSTODY = tables.CustodyEvent.__table__
FLIGHT_EVENT = tables.FlightEvent.__table__
TELEMETRY = tables.TelemetryPoint.__table__
SPECIMEN = tables.Specimen.__table__
SITE = tables.Site.__table__
ROUTE = tables.Route.__table__
SPECIMEN_TRACKING = tables.SpecimenTracking.__table__
FLIGHT_TRACKING = tables.FlightTracking.__table__
JOB_STATE = tables.JobState.__table__
PAD_EVENT = tables.PadEvent.__table__

_CHUNK = 500  # ids per IN (...) list


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    items = sorted(set(values))
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def custody_facts(connection: Connection, barcodes: Iterable[str]
                  ) -> dict[str, list[CustodyFact]]:
    facts: dict[str, list[CustodyFact]] = defaultdict(list)
    for chunk in _chunks(barcodes):
        rows = connection.execute(select(CUSTODY).where(CUSTODY.c.barcode.in_(chunk)))
        for row in rows:
            facts[row.barcode].append(CustodyFact(
                event_id=str(row.event_id), barcode=row.barcode, kind=row.kind,
                site_id=row.site_id, actor_kind=row.actor_kind, actor_id=row.actor_id,
                event_time=as_utc(row.event_time), container_id=row.container_id,
                seal_id=row.seal_id, flight_id=row.flight_id, drone_id=row.drone_id,
                reason=row.reason, received_at=as_utc(row.received_at),
                recorded_by=row.recorded_by))
    return facts


def descriptions(connection: Connection, barcodes: Iterable[str]
                 ) -> dict[str, list[Description]]:
    """Every description sent for each specimen, with the event that carried it. A
    specimen stored before descriptions were kept per event has its registry row only."""
    found: dict[str, list[Description]] = defaultdict(list)
    columns = (CUSTODY.c.barcode, CUSTODY.c.event_id, CUSTODY.c.kind, CUSTODY.c.site_id,
               CUSTODY.c.received_at, CUSTODY.c.event_time, CUSTODY.c.description)
    for chunk in _chunks(barcodes):
        for row in connection.execute(select(*columns).where(
                CUSTODY.c.barcode.in_(chunk), CUSTODY.c.description.is_not(None))):
            sent = json.loads(row.description)
            order_ref = sent.pop("order_ref")
            found[row.barcode].append(Description(
                str(row.event_id), row.kind, row.site_id,
                stored_first(as_utc(row.received_at), as_utc(row.event_time), str(row.event_id)),
                SpecimenFacts(barcode=row.barcode, **sent), order_ref))
    return found


def flight_facts(connection: Connection, flight_ids: Iterable[str]
                 ) -> dict[str, list[FlightFact]]:
    facts: dict[str, list[FlightFact]] = defaultdict(list)
    for chunk in _chunks(flight_ids):
        rows = connection.execute(select(FLIGHT_EVENT).where(FLIGHT_EVENT.c.flight_id.in_(chunk)))
        for row in rows:
            facts[row.flight_id].append(FlightFact(
                event_id=str(row.event_id), flight_id=row.flight_id, drone_id=row.drone_id,
                kind=row.kind, event_time=as_utc(row.event_time), site_id=row.site_id,
                origin_site_id=row.origin_site_id,
                destination_site_id=row.destination_site_id,
                new_destination_site_id=row.new_destination_site_id, reason=row.reason))
    return facts


def specimen_details(connection: Connection, barcodes: Iterable[str]
                     ) -> dict[str, SpecimenFacts]:
    details = {}
    for chunk in _chunks(barcodes):
        for row in connection.execute(select(SPECIMEN).where(SPECIMEN.c.barcode.in_(chunk))):
            details[row.barcode] = SpecimenFacts(
                barcode=row.barcode, kind=row.kind, priority=row.priority,
                temperature_class=row.temperature_class, origin_site_id=row.origin_site_id,
                destination_site_id=row.destination_site_id, blood_product=row.blood_product)
    return details


def flight_tracks(connection: Connection, flight_ids: Iterable[str]
                  ) -> dict[str, list[TelemetryFact]]:
    """Each flight's telemetry in time order (one query per 500 flights)."""
    tracks: dict[str, list[TelemetryFact]] = {flight_id: [] for flight_id in flight_ids}
    for chunk in _chunks(tracks):
        rows = connection.execute(select(TELEMETRY).where(TELEMETRY.c.flight_id.in_(chunk))
                                  .order_by(TELEMETRY.c.flight_id, TELEMETRY.c.event_time))
        for row in rows:
            tracks[row.flight_id].append(_telemetry_fact(row))
    return tracks


def recent_tracks(connection: Connection, drone_ids: Iterable[str], since: datetime
                  ) -> dict[str, list[TelemetryFact]]:
    """Each drone's telemetry since `since`, in time order (one query per 500 drones)."""
    tracks: dict[str, list[TelemetryFact]] = defaultdict(list)
    for chunk in _chunks(drone_ids):
        rows = connection.execute(select(TELEMETRY).where(and_(
            TELEMETRY.c.drone_id.in_(chunk), TELEMETRY.c.event_time >= since))
            .order_by(TELEMETRY.c.drone_id, TELEMETRY.c.event_time))
        for row in rows:
            tracks[row.drone_id].append(_telemetry_fact(row))
    return tracks


def recent_reports(connection: Connection, drone_ids: Iterable[str], received_since: datetime,
                   event_since: datetime) -> dict[str, list[Report]]:
    """Each drone's telemetry received since `received_since`, with its received time.

    The (drone_id, event_time) index bounds the scan: `event_since` must lie before
    `received_since` by at least the largest clock offset to be believed (a report whose
    drone clock is slower than that is not found, and its drone looks silent)."""
    reports: dict[str, list[Report]] = defaultdict(list)
    for chunk in _chunks(drone_ids):
        rows = connection.execute(select(TELEMETRY).where(and_(
            TELEMETRY.c.drone_id.in_(chunk), TELEMETRY.c.event_time >= event_since,
            TELEMETRY.c.received_at >= received_since))
            .order_by(TELEMETRY.c.drone_id, TELEMETRY.c.event_time))
        for row in rows:
            reports[row.drone_id].append(Report(_telemetry_fact(row), as_utc(row.received_at)))
    return reports


def last_seen(connection: Connection, drone_ids: Iterable[str]) -> dict[str, datetime]:
    """The newest telemetry time of each drone."""
    seen = {}
    for chunk in _chunks(drone_ids):
        rows = connection.execute(select(TELEMETRY.c.drone_id, func.max(TELEMETRY.c.event_time))
                                  .where(TELEMETRY.c.drone_id.in_(chunk))
                                  .group_by(TELEMETRY.c.drone_id))
        seen.update({drone_id: as_utc(moment) for drone_id, moment in rows})
    return seen


def _telemetry_fact(row) -> TelemetryFact:
    return TelemetryFact(drone_id=row.drone_id, seq=row.seq, event_time=as_utc(row.event_time),
                         lat=row.lat, lon=row.lon, alt_m=row.alt_m,
                         ground_speed_mps=row.ground_speed_mps, heading_deg=row.heading_deg,
                         battery_pct=row.battery_pct, flight_id=row.flight_id,
                         payload_temp_c=row.payload_temp_c)


def sites(connection: Connection) -> dict[str, SitePoint]:
    return {row.id: SitePoint(row.id, row.lat, row.lon, row.pad_radius_m)
            for row in connection.execute(select(SITE))}


def routes(connection: Connection) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Waypoints of every planned route, by (origin, destination)."""
    return {(row.origin_site_id, row.destination_site_id):
            [tuple(p) for p in json.loads(row.waypoints)] for row in connection.execute(
                select(ROUTE))}


def route_points(site_points: dict[str, SitePoint],
                 planned: dict[tuple[str, str], list[tuple[float, float]]],
                 origin: str | None, destination: str | None
                 ) -> list[tuple[float, float]] | None:
    """Origin, waypoints (of the route either way), destination; None if a site is unknown."""
    if origin not in site_points or destination not in site_points:
        return None
    waypoints = planned.get((origin, destination))
    if waypoints is None:
        waypoints = list(reversed(planned.get((destination, origin), [])))
    start, end = site_points[origin], site_points[destination]
    return [(start.lat, start.lon), *waypoints, (end.lat, end.lon)]


def flight_routes(connection: Connection, flights: Iterable
                  ) -> dict[str, tuple[LatLon, ...] | None]:
    """The plan each flight (`flight_tracking` rows) is judged against: origin, waypoints,
    destination; after a diversion, from where it diverted straight to its new destination
    (domain/monitoring.py, `diverted_route`). None where a site is unknown."""
    flights = list(flights)
    site_points, planned = sites(connection), routes(connection)
    diverted = [f.flight_id for f in flights if f.diverted or f.state == "diverted"]
    diversions = _diversions(connection, diverted)
    plans: dict[str, tuple[LatLon, ...] | None] = {}
    for flight in flights:
        route = route_points(site_points, planned, flight.origin_site_id,
                             flight.destination_site_id)
        if route is not None and flight.flight_id in diversions:
            diverted_at, last = diversions[flight.flight_id]
            route = list(diverted_route(last, diverted_at, route[0], route[-1]))
        plans[flight.flight_id] = tuple(route) if route else None
    return plans


def _diversions(connection: Connection, flight_ids: Iterable[str]
                ) -> dict[str, tuple[datetime, list[TelemetryFact]]]:
    """Each flight's latest diversion and its drone's last report at or before it (one
    query per flight: diverted flights are few; the (flight_id, event_time) index)."""
    found = {}
    for chunk in _chunks(flight_ids):
        latest: dict[str, datetime] = {}
        for row in connection.execute(select(FLIGHT_EVENT.c.flight_id, FLIGHT_EVENT.c.event_time)
                                      .where(FLIGHT_EVENT.c.flight_id.in_(chunk),
                                             FLIGHT_EVENT.c.kind == "diverted")):
            latest[row.flight_id] = max(latest.get(row.flight_id, as_utc(row.event_time)),
                                        as_utc(row.event_time))
        for flight_id, diverted_at in latest.items():
            last = connection.execute(select(TELEMETRY).where(
                TELEMETRY.c.flight_id == flight_id, TELEMETRY.c.event_time <= diverted_at)
                .order_by(TELEMETRY.c.event_time.desc(), TELEMETRY.c.seq.desc()).limit(1)).all()
            found[flight_id] = (diverted_at, [_telemetry_fact(row) for row in last])
    return found


def flights_with_telemetry_received_since(connection: Connection, since: datetime
                                          ) -> tuple[set[str], datetime | None]:
    """Flights with telemetry received after `since`, and the newest received_at seen: a
    late report (store and forward after a lost link, a redelivery) changes its flight's
    track whenever it arrives. On the (received_at, flight_id) index."""
    rows = connection.execute(
        select(TELEMETRY.c.flight_id, func.max(TELEMETRY.c.received_at).label("newest"))
        .where(TELEMETRY.c.received_at > since, TELEMETRY.c.flight_id.is_not(None))
        .group_by(TELEMETRY.c.flight_id)).all()
    newest = max((as_utc(r.newest) for r in rows), default=None)
    return {r.flight_id for r in rows}, newest


def changed_since(connection: Connection, table: Table, key: str, since: datetime
                  ) -> tuple[set[str], datetime | None]:
    """Keys of rows stored after `since`, and the newest stored_at seen."""
    rows = connection.execute(select(table.c[key], table.c.stored_at)
                              .where(table.c.stored_at > since)).all()
    newest = max((as_utc(r.stored_at) for r in rows), default=None)
    return {r[0] for r in rows}, newest


def read_state(connection: Connection, name: str, default: str) -> str:
    value = connection.execute(select(JOB_STATE.c.value).where(JOB_STATE.c.name == name)
                               ).scalar()
    return default if value is None else value


def write_state(connection: Connection, name: str, value: str, now: datetime) -> None:
    upsert(connection, JOB_STATE, [{"name": name, "value": value, "updated_at": now}],
           ["name"])


def flights_of(connection: Connection, barcodes: Iterable[str]) -> dict[str, set[str]]:
    """Every flight each specimen was loaded on."""
    flights: dict[str, set[str]] = defaultdict(set)
    for chunk in _chunks(barcodes):
        rows = connection.execute(select(CUSTODY.c.barcode, CUSTODY.c.flight_id).where(and_(
            CUSTODY.c.barcode.in_(chunk), CUSTODY.c.kind == "loaded")))
        for barcode, flight_id in rows:
            flights[barcode].add(flight_id)
    return flights


def barcodes_on_flights(connection: Connection, flight_ids: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(flight_ids):
        found |= set(connection.execute(select(CUSTODY.c.barcode).where(
            CUSTODY.c.flight_id.in_(chunk))).scalars())
    return found


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OVERLAP = timedelta(seconds=60)



def flights_in_air(connection: Connection) -> list:
    """The flights in the air (`flight_tracking` rows): the sweep's and the notices' one
    query."""
    return connection.execute(select(FLIGHT_TRACKING).where(
        FLIGHT_TRACKING.c.state.in_(("airborne", "diverted")))).all()


def cargo_in_transit(connection: Connection, flight_ids: list[str]) -> dict[str, list]:
    """Specimens in transit (`specimen_tracking` rows), by flight, in one query per 500
    flights."""
    cargo: dict[str, list] = {}
    for chunk in _chunks(flight_ids):
        rows = connection.execute(select(SPECIMEN_TRACKING).where(and_(
            SPECIMEN_TRACKING.c.flight_id.in_(chunk),
            SPECIMEN_TRACKING.c.state == "in_transit")))
        for row in rows:
            cargo.setdefault(row.flight_id, []).append(row)
    return cargo
