"""The routes as stored (`notification_route`) and as the domain reads them (`RouteRule`)."""

import json
from datetime import time

from sqlalchemy import Connection, select

from dronelog.domain.notifications import Period, QuietHours, RouteRule, Source
from dronelog.storage.tables import NotificationRoute

ROUTE = NotificationRoute.__table__


def _clock(value: str | None) -> time | None:
    return time.fromisoformat(value) if value else None


def rule(row) -> RouteRule:
    quiet = (QuietHours(_clock(row.quiet_start), _clock(row.quiet_end))
             if row.quiet_start and row.quiet_end else None)
    return RouteRule(
        id=row.id, source=Source(row.source), channel=row.channel,
        recipients=tuple(json.loads(row.recipients)),
        alert_kinds=frozenset(json.loads(row.alert_kinds)),
        site_ids=frozenset(json.loads(row.site_ids)),
        priorities=frozenset(json.loads(row.priorities)), min_severity=row.min_severity,
        after_min=row.after_min, quiet=quiet, language=row.language,
        period=Period(row.period) if row.period else None, send_at=_clock(row.send_at),
        active=row.active)


def active_rules(connection: Connection) -> list[RouteRule]:
    return [rule(row) for row in connection.execute(
        select(ROUTE).where(ROUTE.c.active.is_(True)).order_by(ROUTE.c.id))]
