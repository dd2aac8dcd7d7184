"""Administration of the notifications, for the admin role: the routes (what goes where;
every change audited), the channels' names (never their URLs: they hold secrets), and the
messages sent or waiting, a page at a time. docs/notifications.md."""

import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import delete, func, select, update

from dronelog.api import audit
from dronelog.api.deps import ConnectionDep
from dronelog.api.problems import Problem
from dronelog.api.routes.admin import Admin, Limit, Offset, require_site
from dronelog.api.schemas import Label, Page
from dronelog.domain.alerts import AlertKind, Severity
from dronelog.domain.notifications import Period, Source
from dronelog.notify.channels import Channels
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import Notification, NotificationRoute

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
ROUTE, NOTIFICATION = NotificationRoute.__table__, Notification.__table__
RouteId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Clock = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                             description="a local time, HH:MM")]
Recipient = Annotated[str, Field(min_length=1, max_length=200,
                                 pattern=r"^[^\s,;<>\"'\x00-\x1f]+$")]
SiteId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class RouteWrite(BaseModel):
    name: Label = Field(max_length=80)
    source: Source = Field(description="alert, landing (the receiving lab before a flight "
                           "lands), assigned (the clinic: its request has a drone), received "
                           "(the clinic: its box was received), report (scheduled)")
    channel: str = Field(max_length=64, description="a channel's name "
                         "(GET /api/v1/admin/notification-channels)")
    recipients: list[Recipient] = Field(default_factory=list, max_length=20,
                                        description="e-mail addresses for an e-mail "
                                        "channel; a group bot posts to its group")
    alert_kinds: list[AlertKind] = Field(default_factory=list, max_length=30,
                                         description="none: every kind")
    site_ids: list[SiteId] = Field(default_factory=list, max_length=50,
                                   description="the sites it concerns; none: every site")
    priorities: list[Literal["stat", "urgent", "routine"]] = Field(
        default_factory=list, max_length=3, description="none: every priority")
    min_severity: Severity | None = None
    after_min: int = Field(0, ge=0, le=1440, description="alerts: 0 when opened; N: when "
                           "still unacknowledged N minutes after (an escalation tier)")
    quiet_start: Clock | None = Field(None, description="quiet hours in the site's zone, "
                                      "start included; critical alerts are never held")
    quiet_end: Clock | None = Field(None, description="end excluded")
    language: Literal["zh", "en"] = "zh"
    period: Period | None = Field(None, description="a report's: daily or weekly")
    send_at: Clock | None = Field(None, description="a report's local time of sending "
                                  "(the network's zone)")
    active: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> "RouteWrite":
        report = self.source == Source.REPORT
        if report != (self.period is not None and self.send_at is not None):
            raise ValueError("a report route needs period and send_at; other routes none")
        if self.source != Source.ALERT and (self.alert_kinds or self.min_severity
                                            or self.after_min):
            raise ValueError("alert_kinds, min_severity and after_min are for alert routes")
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet hours need both quiet_start and quiet_end")
        return self


class RoutePublic(RouteWrite):
    id: int
    updated_at: str
    updated_by: str


class ChannelPublic(BaseModel):
    name: str
    scheme: str = Field(description="the kind of channel (apprise's URL scheme: mailtos, "
                        "wecombot, dingtalk, json...), never its address or secrets")
    attachments: bool = Field(description="whether a scheduled report's PDF is attached")


class NotificationPublic(BaseModel):
    id: int
    route_id: int
    source: str
    subject: str
    channel: str
    title: str
    state: Literal["planned", "sent", "failed"]
    created_at: str
    not_before: str
    attempts: int
    sent_at: str | None = None
    last_error: str | None = None


def _channels(request: Request) -> Channels:
    """The configured channels (checked when the settings were read: config.py)."""
    return Channels.from_setting(request.app.state.settings.notify_channels)


def _route_row(row) -> RoutePublic:
    values = {name: getattr(row, name) for name in RouteWrite.model_fields}
    for name in ("recipients", "alert_kinds", "site_ids", "priorities"):
        values[name] = json.loads(values[name])
    return RoutePublic(id=row.id, updated_at=as_utc(row.updated_at).isoformat(),
                       updated_by=row.updated_by, **values)


def _values(conn, request: Request, body: RouteWrite, admin, now: datetime) -> dict:
    known = {channel.name for channel in _channels(request).describe()}
    if body.channel not in known:
        configured = ", ".join(sorted(known)) or "none"
        raise Problem(422, "Unknown channel", f"no channel {body.channel!r} in "
                      f"DRONELOG_NOTIFY_CHANNELS (configured: {configured})")
    for site_id in body.site_ids:
        require_site(conn, site_id)
    values = body.model_dump(mode="json")
    for name in ("recipients", "alert_kinds", "site_ids", "priorities"):
        values[name] = json.dumps(values[name])
    return values | {"updated_at": now, "updated_by": admin.id}


def _audited(body: RouteWrite) -> dict:
    """What the audit log keeps of a route: all of it but the recipients' addresses."""
    return body.model_dump(mode="json", exclude={"recipients"}) | {
        "recipients": len(body.recipients)}


def _one(conn, route_id: int):
    row = conn.execute(select(ROUTE).where(ROUTE.c.id == route_id)).first()
    if row is None:
        raise Problem(404, "Not found", f"no notification route {route_id}")
    return row


@router.get("/notification-routes", response_model=Page[RoutePublic],
            summary="The notification routes, by id")
def routes(conn: ConnectionDep, _: Admin, limit: Limit = 100,
           offset: Offset = 0) -> Page[RoutePublic]:
    total = conn.execute(select(func.count()).select_from(ROUTE)).scalar_one()
    rows = conn.execute(select(ROUTE).order_by(ROUTE.c.id).limit(limit).offset(offset))
    return Page[RoutePublic](items=[_route_row(row) for row in rows], total=total,
                             limit=limit, offset=offset)


@router.post("/notification-routes", response_model=RoutePublic, status_code=201,
             summary="Add a notification route")
def create_route(body: RouteWrite, request: Request, conn: ConnectionDep,
                 admin: Admin) -> RoutePublic:
    now = request.app.state.clock.now()
    values = _values(conn, request, body, admin, now)
    route_id = conn.execute(ROUTE.insert().values(**values).returning(ROUTE.c.id)).scalar_one()
    audit.record(conn, admin, "notification_route.add", str(route_id), now, **_audited(body))
    return _route_row(_one(conn, route_id))


@router.put("/notification-routes/{route_id}", response_model=RoutePublic,
            summary="Change a notification route")
def change_route(route_id: RouteId, body: RouteWrite, request: Request, conn: ConnectionDep,
                 admin: Admin) -> RoutePublic:
    now = request.app.state.clock.now()
    _one(conn, route_id)
    conn.execute(update(ROUTE).where(ROUTE.c.id == route_id).values(
        **_values(conn, request, body, admin, now)))
    audit.record(conn, admin, "notification_route.change", str(route_id), now,
                 **_audited(body))
    return _route_row(_one(conn, route_id))


@router.delete("/notification-routes/{route_id}",
               summary="Delete a notification route (its messages stay in the list)")
def delete_route(route_id: RouteId, request: Request, conn: ConnectionDep,
                 admin: Admin) -> dict:
    now = request.app.state.clock.now()
    row = _one(conn, route_id)
    conn.execute(delete(ROUTE).where(ROUTE.c.id == route_id))
    audit.record(conn, admin, "notification_route.delete", str(route_id), now,
                 name=row.name, source=row.source, channel=row.channel)
    return {"id": route_id, "deleted": True}


@router.get("/notification-channels", response_model=list[ChannelPublic],
            summary="The channels' names and kinds (DRONELOG_NOTIFY_CHANNELS), never their "
                    "URLs")
def channels(request: Request, _: Admin) -> list[ChannelPublic]:
    return [ChannelPublic(name=c.name, scheme=c.scheme, attachments=c.email)
            for c in _channels(request).describe()]


@router.get("/notifications", response_model=Page[NotificationPublic],
            summary="The messages, newest first: planned (waiting: quiet hours, the rate "
                    "limit, a retry), sent, failed")
def notifications(conn: ConnectionDep, _: Admin,
                  state: Literal["planned", "sent", "failed"] | None = None,
                  source: Source | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                  offset: Offset = 0) -> Page[NotificationPublic]:
    query = select(NOTIFICATION)
    if state is not None:
        query = query.where(NOTIFICATION.c.state == state)
    if source is not None:
        query = query.where(NOTIFICATION.c.source == source.value)
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(query.order_by(NOTIFICATION.c.id.desc()).limit(limit).offset(offset))
    return Page[NotificationPublic](items=[NotificationPublic(
        id=row.id, route_id=row.route_id, source=row.source, subject=row.subject,
        channel=row.channel, title=row.title, state=row.state,
        created_at=as_utc(row.created_at).isoformat(),
        not_before=as_utc(row.not_before).isoformat(), attempts=row.attempts,
        sent_at=row.sent_at and as_utc(row.sent_at).isoformat(), last_error=row.last_error)
        for row in rows], total=total, limit=limit, offset=offset)
