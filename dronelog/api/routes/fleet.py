"""Flights and drones, for dispatchers: the fleet now, and each flight's story and track."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import and_, func, select, true

from dronelog.api.accounts import Role
from dronelog.api.deps import MAX_OFFSET, ConnectionDep, day_query, require
from dronelog.api.problems import Problem
from dronelog.api.schemas import (
    DronePublic,
    FlightDetail,
    FlightEventPublic,
    FlightSummary,
    Page,
    PayloadBand,
    Position,
)
from dronelog.domain.specimens import SpecimenState
from dronelog.domain.temperature import TEMPERATURE_RANGES
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import (
    CustodyEvent,
    Drone,
    FlightEvent,
    FlightTracking,
    SpecimenTracking,
    TelemetryPoint,
)

router = APIRouter(prefix="/api/v1", tags=["fleet"],
                   dependencies=[Depends(require(Role.DISPATCHER, Role.ADMIN))])
F, E, TEL = FlightTracking.__table__, FlightEvent.__table__, TelemetryPoint.__table__
D, C = Drone.__table__, CustodyEvent.__table__
T = SpecimenTracking.__table__
ON_BOARD = (SpecimenState.IN_TRANSIT.value, SpecimenState.LOCATION_UNKNOWN.value)


def _summary(row) -> FlightSummary:
    return FlightSummary(
        flight_id=row.flight_id, drone_id=row.drone_id, state=row.state,
        origin_site_id=row.origin_site_id, destination_site_id=row.destination_site_id,
        took_off_at=as_utc(row.took_off_at), landed_at=as_utc(row.landed_at),
        landed_site_id=row.landed_site_id, diverted=row.diverted)


@router.get("/flights", response_model=Page[FlightSummary], summary="List flights")
def list_flights(request: Request, conn: ConnectionDep, state: str | None = None,
                 drone: str | None = None, origin: str | None = None,
                 destination: str | None = None,
                 day: Annotated[date | None, day_query("take-off day, network time "
                                                       "zone")] = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> Page[FlightSummary]:
    query = select(F)
    for column, value in ((F.c.state, state), (F.c.drone_id, drone),
                          (F.c.origin_site_id, origin), (F.c.destination_site_id, destination)):
        if value:
            query = query.where(column == value)
    if day:
        zone = ZoneInfo(request.app.state.settings.network_timezone)
        start = datetime.combine(day, time(0), tzinfo=zone)
        query = query.where(and_(F.c.took_off_at >= start.astimezone(UTC),
                                 F.c.took_off_at < (start + timedelta(days=1)).astimezone(UTC)))
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(query.order_by(F.c.took_off_at.desc().nulls_last(), F.c.flight_id)
                        .limit(limit).offset(offset)).all()
    return Page[FlightSummary](items=[_summary(r) for r in rows], total=total, limit=limit,
                               offset=offset)


@router.get("/flights/{flight_id}", response_model=FlightDetail,
            summary="A flight: its events, cargo and track (GeoJSON)")
def get_flight(flight_id: str, conn: ConnectionDep) -> FlightDetail:
    row = conn.execute(select(F).where(F.c.flight_id == flight_id)).first()
    if row is None:
        raise Problem(404, "Not found", f"no flight {flight_id!r} is tracked yet")
    events = [FlightEventPublic(event_id=str(e.event_id), kind=e.kind,
                                at=as_utc(e.event_time), site_id=e.site_id or
                                e.new_destination_site_id, reason=e.reason)
              for e in conn.execute(select(E).where(E.c.flight_id == flight_id)
                                    .order_by(E.c.event_time))]
    cargo = sorted(set(conn.execute(select(C.c.barcode).where(and_(
        C.c.flight_id == flight_id, C.c.kind == "loaded"))).scalars()))
    points = conn.execute(select(TEL.c.event_time, TEL.c.lat, TEL.c.lon, TEL.c.alt_m)
                          .where(TEL.c.flight_id == flight_id)
                          .order_by(TEL.c.event_time)).all()
    track = {"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "geometry": {"type": "LineString",
                     "coordinates": [[p.lon, p.lat, p.alt_m] for p in points]},
        "properties": {"flight_id": flight_id,
                       "times": [as_utc(p.event_time).isoformat() for p in points]}}]}
    return FlightDetail(**_summary(row).model_dump(), events=events, cargo=cargo, track=track)


# The newest report of each drone, in one statement that seeks ix_telemetry_drone_time
# (drone_id, event_time) backwards once per drone; equal event times: the later stored row.
# A window function or a join on max(event_time) per drone reads every telemetry row
# instead (measured: docs/benchmarks.md, "API benchmark"). PostgreSQL, where telemetry is
# partitioned by month, takes the row in a LATERAL subquery: one seek per partition. SQLite
# has no LATERAL: a correlated subquery finds the newest row id, then the row by its key.
_REPORT = ("event_time", "received_at", "lat", "lon", "alt_m", "ground_speed_mps", "battery_pct",
           "payload_temp_c", "link_quality_pct", "heading_deg")
_NEWEST = TEL.alias("newest")


def _newest_of_the_drone(*columns):
    return (select(*columns).where(_NEWEST.c.drone_id == D.c.id)
            .order_by(_NEWEST.c.event_time.desc(), _NEWEST.c.id.desc()).limit(1))


_LATERAL = _newest_of_the_drone(*(_NEWEST.c[name] for name in _REPORT)).lateral("latest")
_NEWEST_ID = _newest_of_the_drone(_NEWEST.c.id).scalar_subquery()
_REGISTRY = (D.c.id.label("drone_id"), D.c.online, D.c.display_name, D.c.model,
             D.c.home_site_id, D.c.retired)
FLEET = {
    "postgresql": select(*_REGISTRY, *(_LATERAL.c[name] for name in _REPORT))
    .select_from(D.outerjoin(_LATERAL, true())).order_by(D.c.id),
    "sqlite": select(*_REGISTRY, *(TEL.c[name] for name in _REPORT))
    .select_from(D.outerjoin(TEL, TEL.c.id == _NEWEST_ID)).order_by(D.c.id),
}


@router.get("/drones", response_model=list[DronePublic],
            summary="The fleet: every drone's latest report, link freshness, current flight")
def fleet(request: Request, conn: ConnectionDep,
          include_retired: Annotated[bool, Query(description="also the drones an "
                                                 "administrator retired")] = False
          ) -> list[DronePublic]:
    now = request.app.state.clock.now()
    query = FLEET[conn.dialect.name]
    if not include_retired:
        query = query.where(D.c.retired.is_(False))
    flying = {r.drone_id: r for r in conn.execute(select(F.c.drone_id, F.c.flight_id, F.c.state)
                                                  .where(F.c.state.in_(("airborne",
                                                                        "diverted"))))}
    bands = _cargo_bands(conn, [f.flight_id for f in flying.values()])
    result = []
    for row in conn.execute(query):
        flight = flying.get(row.drone_id)
        entry = {"drone_id": row.drone_id, "online": row.online,
                 "display_name": row.display_name, "model": row.model,
                 "home_site_id": row.home_site_id, "retired": row.retired,
                 "flight_id": flight.flight_id if flight else None,
                 "flight_state": flight.state if flight else None,
                 "payload_bands": bands.get(flight.flight_id, []) if flight else []}
        if row.event_time is not None:
            seen = as_utc(row.event_time)
            entry.update(
                last_seen=seen, link_age_s=(now - seen).total_seconds(),
                last_received=as_utc(row.received_at),
                received_age_s=(now - as_utc(row.received_at)).total_seconds(),
                link_quality_pct=row.link_quality_pct, heading_deg=row.heading_deg,
                position=Position(at=seen, lat=row.lat, lon=row.lon, alt_m=row.alt_m,
                                  ground_speed_mps=row.ground_speed_mps,
                                  battery_pct=row.battery_pct,
                                  payload_temp_c=row.payload_temp_c))
        result.append(DronePublic(**entry))
    return result


def _cargo_bands(conn, flight_ids: list[str]) -> dict[str, list[PayloadBand]]:
    """The temperature classes on board each flight (its specimens loaded and not yet off)."""
    if not flight_ids:
        return {}
    classes: dict[str, set[str]] = {}
    for row in conn.execute(select(T.c.flight_id, T.c.temperature_class).distinct().where(
            and_(T.c.flight_id.in_(flight_ids), T.c.state.in_(ON_BOARD)))):
        classes.setdefault(row.flight_id, set()).add(row.temperature_class)
    return {flight: [PayloadBand(temperature_class=name, low_c=TEMPERATURE_RANGES[name].low_c,
                                 high_c=TEMPERATURE_RANGES[name].high_c)
                     for name in sorted(names) if name in TEMPERATURE_RANGES]
            for flight, names in classes.items()}
