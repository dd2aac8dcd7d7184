"""Flights and drones, for dispatchers: the fleet now, and each flight's story and track."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import and_, func, select

from dronelog.api.accounts import Role
from dronelog.api.deps import MAX_OFFSET, ConnectionDep, require
from dronelog.api.problems import Problem
from dronelog.api.schemas import (
    DronePublic,
    FlightDetail,
    FlightEventPublic,
    FlightSummary,
    Page,
    Position,
)
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import CustodyEvent, Drone, FlightEvent, FlightTracking, TelemetryPoint

router = APIRouter(prefix="/api/v1", tags=["fleet"],
                   dependencies=[Depends(require(Role.DISPATCHER, Role.ADMIN))])
F, E, TEL = FlightTracking.__table__, FlightEvent.__table__, TelemetryPoint.__table__
D, C = Drone.__table__, CustodyEvent.__table__


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
                 day: Annotated[date | None, Query(description="take-off day, network "
                                                   "time zone")] = None,
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


@router.get("/drones", response_model=list[DronePublic],
            summary="The fleet: every drone's latest report, link freshness, current flight")
def fleet(request: Request, conn: ConnectionDep) -> list[DronePublic]:
    now = request.app.state.clock.now()
    flying = {r.drone_id: r for r in conn.execute(select(F).where(
        F.c.state.in_(("airborne", "diverted"))))}
    result = []
    for drone in conn.execute(select(D).order_by(D.c.id)):
        last = conn.execute(select(TEL).where(TEL.c.drone_id == drone.id)
                            .order_by(TEL.c.event_time.desc()).limit(1)).first()
        flight = flying.get(drone.id)
        entry = DronePublic(drone_id=drone.id, online=drone.online,
                            flight_id=flight.flight_id if flight else None,
                            flight_state=flight.state if flight else None)
        if last is not None:
            seen = as_utc(last.event_time)
            entry.last_seen, entry.link_age_s = seen, (now - seen).total_seconds()
            entry.position = Position(at=seen, lat=last.lat, lon=last.lon, alt_m=last.alt_m,
                                      ground_speed_mps=last.ground_speed_mps,
                                      battery_pct=last.battery_pct,
                                      payload_temp_c=last.payload_temp_c)
            entry.link_quality_pct, entry.heading_deg = last.link_quality_pct, last.heading_deg
        result.append(entry)
    return result
