"""Specimens: look one up by barcode (its story, where it is, when it arrives), or list them."""

import json
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection, func, select

from dronelog.api.accounts import Role
from dronelog.api.deps import MAX_OFFSET, BarcodePath, ConnectionDep, require
from dronelog.api.problems import Problem
from dronelog.api.schemas import (
    CustodyStep,
    Page,
    Position,
    SpecimenDetail,
    SpecimenSummary,
    TemperatureReading,
)
from dronelog.domain.facts import SpecimenFacts
from dronelog.domain.monitoring import flight_eta
from dronelog.domain.specimens import problems
from dronelog.domain.stability import SpecimenLimits, stability_exceeded
from dronelog.domain.temperature import TemperatureRange
from dronelog.domain.turnaround import turnaround_status
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import CustodyEvent, Specimen, SpecimenTracking, TelemetryPoint
from dronelog.turnaround import repository as repo
from dronelog.turnaround.sweep import SweepRules

router = APIRouter(prefix="/api/v1/specimens", tags=["specimens"],
                   dependencies=[Depends(require(Role.LAB, Role.DISPATCHER, Role.ADMIN))])
T = SpecimenTracking.__table__
S = Specimen.__table__
C = CustodyEvent.__table__
TEL = TelemetryPoint.__table__
MAX_READINGS = 600  # a chart's worth; longer flights are thinned evenly
RECENT = timedelta(minutes=5)  # the reports a position and an ETA are made from


def _summary(row, now: datetime) -> dict:
    return {"barcode": row.barcode, "kind": row.kind, "priority": row.priority,
            "state": row.state, "origin_site_id": row.origin_site_id,
            "destination_site_id": row.destination_site_id, "site_id": row.site_id,
            "collected_at": as_utc(row.collected_at), "deadline": as_utc(row.deadline),
            "received_at": as_utc(row.received_at),
            "turnaround": turnaround_status(row.state, as_utc(row.received_at),
                                            as_utc(row.deadline), as_utc(row.warning_at), now),
            "problems": problems(row.state, row.excursion, json.loads(row.custody_gaps),
                                 json.loads(row.anomalies),
                                 json.loads(row.description_conflicts),
                                 row.description_source,
                                 stability_exceeded=stability_exceeded(
                                     as_utc(row.stability_until), as_utc(row.received_at),
                                     now))}


@router.get("", response_model=Page[SpecimenSummary], summary="List specimens")
def list_specimens(request: Request, conn: ConnectionDep,
                   site: Annotated[str | None, Query(description="origin or destination")] = None,
                   state: str | None = None, priority: str | None = None,
                   open_only: bool = False, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                   offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> Page[SpecimenSummary]:
    query = select(T)
    if site:
        query = query.where((T.c.origin_site_id == site) | (T.c.destination_site_id == site))
    if state:
        query = query.where(T.c.state == state)
    if priority:
        query = query.where(T.c.priority == priority)
    if open_only:
        query = query.where(T.c.is_open.is_(True))
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(query.order_by(T.c.deadline).limit(limit).offset(offset)).all()
    now = request.app.state.clock.now()
    return Page[SpecimenSummary](items=[SpecimenSummary(**_summary(r, now)) for r in rows],
                                 total=total, limit=limit, offset=offset)


@router.get("/{barcode}", response_model=SpecimenDetail, summary="A specimen's story")
def get_specimen(barcode: BarcodePath, request: Request, conn: ConnectionDep) -> SpecimenDetail:
    row = conn.execute(select(T).where(T.c.barcode == barcode)).first()
    details = conn.execute(select(S).where(S.c.barcode == barcode)).first()
    if row is None:
        raise Problem(404, "Not found", f"no specimen with barcode {barcode!r} is tracked yet")
    now = request.app.state.clock.now()
    timeline = [CustodyStep(event_id=str(e.event_id), kind=e.kind, at=as_utc(e.event_time),
                            site_id=e.site_id, actor_kind=e.actor_kind, actor_id=e.actor_id,
                            container_id=e.container_id, seal_id=e.seal_id,
                            flight_id=e.flight_id, drone_id=e.drone_id, reason=e.reason,
                            recorded_by=e.recorded_by)
                for e in conn.execute(select(C).where(C.c.barcode == barcode)
                                      .order_by(C.c.event_time))]
    position, eta = None, None
    if row.state == "in_transit":
        position, eta = _in_flight(conn, row, now)
    elif row.state == "location_unknown":
        position = _last_known(conn, row.flight_id)
    band = _band(request.app.state.limits, row, details)
    flights = sorted({step.flight_id for step in timeline
                      if step.kind == "loaded" and step.flight_id})
    return SpecimenDetail(
        **_summary(row, now), blood_product=details.blood_product if details else None,
        temperature_class=row.temperature_class,
        order_ref=details.order_ref if details else None,
        container_id=row.container_id, flight_id=row.flight_id, drone_id=row.drone_id,
        temp_min_c=row.temp_min_c, temp_max_c=row.temp_max_c,
        temp_out_of_range_s=row.temp_out_of_range_s, temp_unknown_s=row.temp_unknown_s,
        excursion=row.excursion,
        custody_gaps=json.loads(row.custody_gaps), anomalies=json.loads(row.anomalies),
        description_source=row.description_source,
        description_conflicts=json.loads(row.description_conflicts),
        seal_packed=row.seal_packed, seal_found=row.seal_found,
        stability_until=as_utc(row.stability_until),
        allowed_min_c=band.low_c if band else None, allowed_max_c=band.high_c if band else None,
        temperature=_temperature(conn, flights),
        position=position, eta=eta, timeline=timeline)


def _band(limits: SpecimenLimits, row, details) -> TemperatureRange | None:
    """The band the engine holds the specimen to: its class's range, narrowed by the
    stability of its type."""
    return limits.temperature_range(SpecimenFacts(
        barcode=row.barcode, kind=row.kind, priority=row.priority,
        temperature_class=row.temperature_class, origin_site_id=row.origin_site_id,
        destination_site_id=row.destination_site_id or "",
        blood_product=details.blood_product if details else None))


def _temperature(conn: Connection, flight_ids: list[str]) -> list[TemperatureReading]:
    """The payload box's readings on the flights the specimen was loaded on, as the
    turnaround engine counts them (at most `MAX_READINGS`)."""
    if not flight_ids:
        return []
    rows = conn.execute(select(TEL.c.event_time, TEL.c.payload_temp_c, TEL.c.flight_id)
                        .where(TEL.c.flight_id.in_(flight_ids),
                               TEL.c.payload_temp_c.is_not(None))
                        .order_by(TEL.c.event_time)).all()
    if not rows:  # loaded on a flight that has sent no box temperature (yet)
        return []
    step = -(-len(rows) // MAX_READINGS)
    return [TemperatureReading(at=as_utc(r.event_time), payload_temp_c=r.payload_temp_c,
                               flight_id=r.flight_id) for r in rows[::step]]


def _last_known(conn: Connection, flight_id: str | None) -> Position | None:
    """The last position its flight reported: where to start looking for a specimen whose
    flight ended away from every site."""
    if not flight_id:
        return None
    last = conn.execute(select(TEL).where(TEL.c.flight_id == flight_id)
                        .order_by(TEL.c.event_time.desc()).limit(1)).first()
    if last is None:
        return None
    return Position(at=as_utc(last.event_time), lat=last.lat, lon=last.lon, alt_m=last.alt_m,
                    ground_speed_mps=last.ground_speed_mps, battery_pct=last.battery_pct,
                    payload_temp_c=last.payload_temp_c)


def _in_flight(conn: Connection, row, now: datetime) -> tuple[Position | None, datetime | None]:
    """Where its drone is and when it arrives: the engine's one ETA (domain/monitoring.py),
    from the reports received in the last minutes, on the server's clock."""
    if not row.drone_id:
        return None, None
    rules = SweepRules()
    reports = [r for r in repo.recent_reports(
        conn, [row.drone_id], received_since=now - RECENT,
        event_since=now - RECENT - timedelta(seconds=rules.max_clock_offset_s),
    ).get(row.drone_id, []) if r.telemetry.flight_id == row.flight_id]
    if not reports:
        return None, None
    last = max(reports, key=lambda r: (r.received_at, r.telemetry.seq)).telemetry
    position = Position(at=last.event_time, lat=last.lat, lon=last.lon, alt_m=last.alt_m,
                        ground_speed_mps=last.ground_speed_mps, battery_pct=last.battery_pct,
                        payload_temp_c=last.payload_temp_c)
    flight = conn.execute(select(repo.FLIGHT_TRACKING).where(
        repo.FLIGHT_TRACKING.c.flight_id == row.flight_id)).first()
    route = repo.flight_routes(conn, [flight])[flight.flight_id] if flight else None
    if route is None:
        return position, None
    return position, flight_eta(route, reports, now, rules.monitoring()).arrival_at
