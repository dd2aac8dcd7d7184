"""Alerts: list them, one by one or grouped by flight and container; dispatchers
acknowledge (one, or a group at once) and resolve (with a note)."""

import json
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import Select, func, or_, select

from dronelog.api import alert_groups, audit
from dronelog.api.accounts import Role, User
from dronelog.api.alert_groups import MAX_RESOLVED_DAYS, RESOLVED_DAYS
from dronelog.api.deps import MAX_OFFSET, ConnectionDep, UserDep, require
from dronelog.api.problems import Problem
from dronelog.api.schemas import (
    AcknowledgedMany,
    AcknowledgeMany,
    AlertGroupPublic,
    AlertPublic,
    AlertSkipped,
    Page,
    ResolveRequest,
)
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import Alert
from dronelog.turnaround import alert_store

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
Dispatcher = Annotated[User, Depends(require(Role.DISPATCHER))]
AlertId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # alert.id is a 32-bit integer
A = Alert.__table__


def public_alert(row) -> AlertPublic:
    """An alert row (extra columns ignored) as the API shows it."""
    values = dict(row._mapping)
    for key in ("opened_at", "acknowledged_at", "resolved_at"):
        values[key] = as_utc(values[key])
    values["details"] = json.loads(values.get("details") or "{}")
    return AlertPublic(**values)


def concerns_site(site: str):
    """Alerts that reach `site`'s lab: about it, or about a specimen collected there or
    (misrouted) lying there."""
    return or_(A.c.site_id == site, A.c.origin_site_id == site, A.c.at_site_id == site)


StateFilter = Annotated[str | None, Query(
    pattern="^(open|acknowledged|resolved|active)$",
    description="active: open or acknowledged")]
KindFilter = Annotated[str | None, Query(max_length=32)]
SiteFilter = Annotated[str | None, Query(max_length=64)]
SeverityFilter = Annotated[str | None, Query(pattern="^(critical|high|medium)$")]
Readers = [Depends(require(Role.DISPATCHER, Role.ADMIN, Role.LAB))]
ResolvedDays = Annotated[int, Query(
    ge=1, le=MAX_RESOLVED_DAYS,
    description="of the resolved alerts, those resolved in the last this many days (open and "
                "acknowledged alerts are all grouped)")]


def filtered(user: User, state: str | None, kind: str | None, site: str | None,
             severity: str | None) -> Select:
    """The alerts the filters select, of those the user may see."""
    query = select(A)
    if user.role is Role.LAB:
        site = user.site_id  # lab staff see the alerts that reach their site
    if state == "active":
        query = query.where(A.c.state != "resolved")
    elif state:
        query = query.where(A.c.state == state)
    if kind:
        query = query.where(A.c.kind == kind)
    if severity:
        query = query.where(A.c.severity == severity)
    if site:
        query = query.where(concerns_site(site))
    return query


@router.get("", response_model=Page[AlertPublic], summary="List alerts", dependencies=Readers)
def list_alerts(conn: ConnectionDep, user: UserDep, state: StateFilter = None,
                kind: KindFilter = None, site: SiteFilter = None,
                severity: SeverityFilter = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 50,
                offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> Page[AlertPublic]:
    query = filtered(user, state, kind, site, severity)
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(query.order_by(A.c.opened_at.desc(), A.c.id.desc())
                        .limit(limit).offset(offset)).all()
    return Page[AlertPublic](items=[public_alert(r) for r in rows], total=total, limit=limit,
                             offset=offset)


@router.get("/groups", response_model=Page[AlertGroupPublic], dependencies=Readers,
            summary="Alerts grouped by flight and container, by severity then age")
def list_groups(request: Request, conn: ConnectionDep, user: UserDep,
                state: StateFilter = None, kind: KindFilter = None, site: SiteFilter = None,
                severity: SeverityFilter = None, resolved_days: ResolvedDays = RESOLVED_DAYS,
                limit: Annotated[int, Query(ge=1, le=200)] = 50,
                offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0
                ) -> Page[AlertGroupPublic]:
    since = request.app.state.clock.now() - timedelta(days=resolved_days)
    query = alert_groups.resolved_since(filtered(user, state, kind, site, severity), state,
                                         since)
    page, total = alert_groups.groups(conn, query, limit, offset)
    found = alert_groups.members(conn, query, [group.key for group in page])
    items = [AlertGroupPublic(**{**group.__dict__, "opened_at": as_utc(group.opened_at),
                                 "last_opened_at": as_utc(group.last_opened_at)},
                              alerts=[public_alert(row) for row in found[group.key]])
             for group in page]
    return Page[AlertGroupPublic](items=items, total=total, limit=limit, offset=offset)


@router.post("/acknowledge", response_model=AcknowledgedMany,
             summary="Acknowledge several open alerts at once (a group), at most 200")
def acknowledge_many(body: AcknowledgeMany, request: Request, conn: ConnectionDep,
                     user: Dispatcher) -> AcknowledgedMany:
    now = request.app.state.clock.now()
    wanted = sorted(set(body.ids))
    done = alert_store.acknowledge_many(conn, wanted, user.id, now)
    for alert_id in done:
        audit.record(conn, user, "alert.acknowledge", str(alert_id), now, bulk=len(wanted))
    states = dict(conn.execute(select(A.c.id, A.c.state).where(
        A.c.id.in_(sorted(set(wanted) - set(done))))).all())
    return AcknowledgedMany(acknowledged=done, skipped=[
        AlertSkipped(id=alert_id, state=states.get(alert_id))
        for alert_id in wanted if alert_id not in done])


@router.post("/{alert_id}/acknowledge", response_model=AlertPublic,
             summary="Acknowledge an open alert")
def acknowledge(alert_id: AlertId, request: Request, conn: ConnectionDep,
                user: Dispatcher) -> AlertPublic:
    now = request.app.state.clock.now()
    _change(lambda: alert_store.acknowledge(conn, alert_id, user.id, now))
    audit.record(conn, user, "alert.acknowledge", str(alert_id), now)
    return public_alert(conn.execute(select(A).where(A.c.id == alert_id)).one())


@router.post("/{alert_id}/resolve", response_model=AlertPublic,
             summary="Resolve an alert by hand, with a note")
def resolve(alert_id: AlertId, body: ResolveRequest, request: Request, conn: ConnectionDep,
            user: Dispatcher) -> AlertPublic:
    now = request.app.state.clock.now()
    _change(lambda: alert_store.resolve(conn, alert_id, user.id, body.note, now))
    audit.record(conn, user, "alert.resolve", str(alert_id), now, note=body.note)
    return public_alert(conn.execute(select(A).where(A.c.id == alert_id)).one())


def _change(action) -> None:
    """Run a conditional state change; a change the alert no longer allows (a second
    resolve, an acknowledgement of a resolved alert) is a 409 naming the state it is in."""
    try:
        action()
    except alert_store.AlertNotFound as error:
        raise Problem(404, "Not found", str(error)) from error
    except alert_store.AlertConflict as error:
        raise Problem(409, "Conflict", str(error), alert_id=error.alert_id,
                      state=error.state.value) from error
    except alert_store.AlertError as error:
        raise Problem(409, "Conflict", str(error)) from error
