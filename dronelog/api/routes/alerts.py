"""Alerts: list them; dispatchers acknowledge and resolve (with a note)."""

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import func, or_, select

from dronelog.api import audit
from dronelog.api.accounts import Role, User
from dronelog.api.deps import MAX_OFFSET, ConnectionDep, UserDep, require
from dronelog.api.problems import Problem
from dronelog.api.schemas import AlertPublic, Page, ResolveRequest
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


@router.get("", response_model=Page[AlertPublic], summary="List alerts",
            dependencies=[Depends(require(Role.DISPATCHER, Role.ADMIN, Role.LAB))])
def list_alerts(conn: ConnectionDep, user: UserDep, state: str | None = None,
                kind: str | None = None, site: str | None = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 50,
                offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> Page[AlertPublic]:
    query = select(A)
    if user.role is Role.LAB:
        site = user.site_id  # lab staff see the alerts that reach their site
    if state == "active":
        query = query.where(A.c.state != "resolved")
    elif state:
        query = query.where(A.c.state == state)
    if kind:
        query = query.where(A.c.kind == kind)
    if site:
        query = query.where(concerns_site(site))
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(query.order_by(A.c.opened_at.desc(), A.c.id.desc())
                        .limit(limit).offset(offset)).all()
    return Page[AlertPublic](items=[public_alert(r) for r in rows], total=total, limit=limit,
                             offset=offset)


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
