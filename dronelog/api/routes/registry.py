"""Sites and routes, the turnaround report and the dead letters."""

import csv
import io
import json
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from dronelog.api.accounts import Role
from dronelog.api.deps import (
    EARLIEST_DAY,
    LATEST_DAY,
    MAX_OFFSET,
    ConnectionDep,
    day_query,
    require,
)
from dronelog.api.problems import Problem
from dronelog.api.schemas import (
    DeadLetterPublic,
    Page,
    PeriodReport,
    RoutePublic,
    SitePublic,
)
from dronelog.exports.report_pdf import period_pdf, site_names
from dronelog.exports.report_pdf import period_report as period_report_of
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import DeadLetter, Route, Site
from dronelog.storage.tables import TurnaroundReportBase as ReportRow
from dronelog.turnaround.period_report import MAX_DAYS, Period, PeriodTooLong
from dronelog.turnaround.report import compute

router = APIRouter(prefix="/api/v1", tags=["registry and reports"])
S, R, DL = Site.__table__, Route.__table__, DeadLetter.__table__
Readers = Depends(require(Role.LAB, Role.DISPATCHER, Role.ADMIN))
Operators = Depends(require(Role.DISPATCHER, Role.ADMIN))


@router.get("/sites", response_model=list[SitePublic], dependencies=[Readers],
            summary="The network's sites")
def sites(conn: ConnectionDep) -> list[SitePublic]:
    return [SitePublic(id=r.id, name_zh=r.name_zh, name_en=r.name_en, short_zh=r.short_zh,
                       short_en=r.short_en, kind=r.kind, lat=r.lat,
                       lon=r.lon, timezone=r.timezone, pad_radius_m=r.pad_radius_m)
            for r in conn.execute(select(S).order_by(S.c.id))]


@router.get("/routes", response_model=list[RoutePublic], dependencies=[Readers],
            summary="The network's planned routes (waypoints as [lat, lon])")
def routes(conn: ConnectionDep) -> list[RoutePublic]:
    return [RoutePublic(origin_site_id=r.origin_site_id,
                        destination_site_id=r.destination_site_id, cruise_alt_m=r.cruise_alt_m,
                        waypoints=json.loads(r.waypoints))
            for r in conn.execute(select(R).order_by(R.c.origin_site_id,
                                                     R.c.destination_site_id))]


@router.get("/reports/turnaround", response_model=list[ReportRow], dependencies=[Readers],
            summary="The turnaround report of a day (JSON, or CSV with format=csv)",
            responses={200: {"content": {"text/csv": {}}}})
def turnaround_report(request: Request, conn: ConnectionDep,
                      day: Annotated[date, day_query("the day, network time zone")],
                      format: Annotated[str, Query(pattern="^(json|csv)$")] = "json"):
    state = request.app.state
    rows = [ReportRow(**{k: v for k, v in row.items() if k != "computed_at"})
            for row in compute(conn, day, state.settings.network_timezone, state.clock.now())]
    if format == "json":
        return rows
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(ReportRow.model_fields))
    writer.writeheader()
    writer.writerows(row.model_dump() for row in rows)
    return Response(buffer.getvalue(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="turnaround-{day.isoformat()}.csv"'})


@router.get("/reports/period", response_model=PeriodReport, dependencies=[Readers],
            summary="The turnaround report of a period: P50/P90 per route, priority and kind "
                    "and per leg, rejections, excursions, manifest discrepancies (JSON, CSV "
                    "of one table with format=csv, or a printable PDF with format=pdf)",
            responses={200: {"content": {"text/csv": {}, "application/pdf": {}}},
                       422: {"description": f"the period is longer than {MAX_DAYS} days, "
                             "or ends before it starts"}})
def period_report(request: Request, conn: ConnectionDep,
                  first: Annotated[date, Query(alias="from", ge=EARLIEST_DAY, le=LATEST_DAY,
                                               description="the first day, network time "
                                               "zone")],
                  last: Annotated[date, Query(alias="to", ge=EARLIEST_DAY, le=LATEST_DAY,
                                              description="the last day, included")],
                  format: Annotated[str, Query(pattern="^(json|csv|pdf)$")] = "json",
                  table: Annotated[str, Query(pattern="^(groups|routes|rejections|"
                                              "discrepancies|requests)$",
                                              description="the table a CSV holds")] = "groups",
                  language: Annotated[str, Query(pattern="^(zh|en)$")] = "zh"):
    zone = request.app.state.settings.network_timezone
    try:
        period = Period(first, last)
    except PeriodTooLong as error:
        raise Problem(422, "Period not allowed", str(error)) from error
    report = period_report_of(conn, period, zone)
    name = f"turnaround-{first.isoformat()}-{last.isoformat()}"
    if format == "json":
        return report
    if format == "pdf":
        return Response(period_pdf(report, site_names(conn), language),
                        media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'})
    rows = getattr(report, table)
    model = type(report).model_fields[table].annotation.__args__[0]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(model.model_fields))
    writer.writeheader()
    writer.writerows(row.model_dump() for row in rows)
    return Response(buffer.getvalue(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}-{table}.csv"'})


@router.get("/dead-letters", response_model=Page[DeadLetterPublic], dependencies=[Operators],
            summary="Input that could not be stored, newest first, with the reason")
def dead_letters(conn: ConnectionDep, reason_code: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> Page[DeadLetterPublic]:
    query = select(DL)
    if reason_code:
        query = query.where(DL.c.reason_code == reason_code)
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(query.order_by(DL.c.received_at.desc(), DL.c.id.desc())
                        .limit(limit).offset(offset)).all()
    return Page[DeadLetterPublic](items=[DeadLetterPublic(
        id=r.id, received_at=as_utc(r.received_at), topic=r.topic, reason_code=r.reason_code,
        reason=r.reason, event_id=r.event_id,
        payload=r.payload.decode("utf-8", "replace")[:2000]) for r in rows],
        total=total, limit=limit, offset=offset)
