"""Stored alerts and their changes. Every change is a row of `alert_change`, which doubles as
the outbox the notifier publishes from, so no change is lost between database and MQTT."""

import json
from datetime import datetime

from sqlalchemy import Connection, and_, insert, select, update

from dronelog.domain.alert_text import DEFAULT_ZONE, SiteLabel, render_or
from dronelog.domain.alerts import (
    LATCHED,
    AlertKind,
    AlertState,
    Condition,
    KnownAlert,
    Reconciliation,
)
from dronelog.storage.change_notice import announce
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import Alert, AlertChange, Site

ALERT = Alert.__table__
CHANGE = AlertChange.__table__
SITE = Site.__table__


_LATCHED_KINDS = sorted(kind.value for kind in LATCHED)


class AlertError(ValueError):
    """A change the alert's state does not allow (the message says why)."""


class AlertNotFound(AlertError):
    """No alert has this id."""


class AlertConflict(AlertError):
    """The alert is no longer in a state that allows the change (someone else, or the
    sweep, changed it first); `state` is the state it is in now."""

    def __init__(self, message: str, alert_id: int, state: AlertState) -> None:
        super().__init__(message)
        self.alert_id, self.state = alert_id, state


def known_alerts(connection: Connection, subject_ids: set[str]) -> list[KnownAlert]:
    """Active alerts, and resolved latched ones of the given subjects (only those matter to
    `reconcile`)."""
    rows = list(connection.execute(select(ALERT.c.id, ALERT.c.subject_kind, ALERT.c.subject_id,
                                          ALERT.c.kind, ALERT.c.state)
                                   .where(ALERT.c.state != AlertState.RESOLVED.value)))
    ids = sorted(subject_ids)
    for start in range(0, len(ids), 500):
        rows += list(connection.execute(
            select(ALERT.c.id, ALERT.c.subject_kind, ALERT.c.subject_id, ALERT.c.kind,
                   ALERT.c.state)
            .where(and_(ALERT.c.state == AlertState.RESOLVED.value,
                        ALERT.c.kind.in_(_LATCHED_KINDS),
                        ALERT.c.subject_id.in_(ids[start:start + 500])))))
    return [KnownAlert(r.id, r.subject_kind, r.subject_id, AlertKind(r.kind),
                       AlertState(r.state)) for r in rows]


def site_labels(connection: Connection) -> dict[str, SiteLabel]:
    """Every site's names and time zone, for the alert texts."""
    return {row.id: SiteLabel(row.name_zh, row.name_en, row.timezone or DEFAULT_ZONE)
            for row in connection.execute(select(SITE.c.id, SITE.c.name_zh, SITE.c.name_en,
                                                 SITE.c.timezone))}


def apply(connection: Connection, changes: Reconciliation, now: datetime,
          language: str = "zh") -> list[int]:
    """Open and resolve alerts as reconciled, in bulk; the ids of the alerts that changed.
    A new alert's `details` are its parameters and its `message` their text in `language`
    (the network's), times in its site's zone.

    Resolving is conditional: only an alert still open or acknowledged is resolved, so an
    alert a person resolved after `reconcile` read it keeps that person's resolution (and
    gets no second "resolved" change)."""
    opened = _open_many(connection, changes.to_open, now, language)
    why_by_id = dict(changes.to_resolve)
    wanted = sorted(why_by_id)
    resolved: list[int] = []
    for start in range(0, len(wanted), 500):
        resolved += connection.execute(
            update(ALERT).where(and_(ALERT.c.id.in_(wanted[start:start + 500]),
                                     ALERT.c.state != AlertState.RESOLVED.value))
            .values(state=AlertState.RESOLVED.value, resolved_at=now,
                    resolved_by="dronelog", resolution_note="condition cleared")
            .returning(ALERT.c.id)).scalars().all()
    resolved.sort()
    change_rows = [_change_row(alert_id, "opened", now, "dronelog", None) for alert_id in opened]
    change_rows += [_change_row(alert_id, "resolved", now, "dronelog", why_by_id[alert_id])
                    for alert_id in resolved]
    if change_rows:
        connection.execute(insert(CHANGE), change_rows)
        announce(connection)
    return opened + resolved


def _open_many(connection: Connection, conditions: list[Condition], now: datetime,
               language: str) -> list[int]:
    if not conditions:
        return []
    sites = site_labels(connection)
    rows = [{"subject_kind": c.subject_kind, "subject_id": c.subject_id, "kind": c.kind.value,
             "severity": c.severity.value, "state": AlertState.OPEN.value,
             "message": render_or(c.message, c.kind.value, c.params, language, sites),
             "details": json.dumps(c.params, default=str, sort_keys=True),
             "site_id": c.site_id, "drone_id": c.drone_id,
             "origin_site_id": c.origin_site_id, "at_site_id": c.at_site_id, "opened_at": now}
            for c in conditions]
    result = connection.execute(
        insert(ALERT).returning(ALERT.c.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def acknowledge(connection: Connection, alert_id: int, by: str, now: datetime) -> None:
    """Acknowledge an open alert. One conditional UPDATE decides: of two dispatchers (or a
    dispatcher and the sweep) only the first changes the alert; the other gets
    AlertConflict with the state the alert is in now."""
    changed = connection.execute(
        update(ALERT).where(and_(ALERT.c.id == alert_id,
                                 ALERT.c.state == AlertState.OPEN.value))
        .values(state=AlertState.ACKNOWLEDGED.value, acknowledged_at=now, acknowledged_by=by)
        .returning(ALERT.c.id)).scalar()
    if changed is None:
        state = _state_of(connection, alert_id)
        raise AlertConflict(f"alert {alert_id} is {state.value}{_by_whom(connection, alert_id)}"
                            "; only an open alert can be acknowledged", alert_id, state)
    _record(connection, alert_id, "acknowledged", now, by, None)


def acknowledge_many(connection: Connection, alert_ids: list[int], by: str,
                     now: datetime) -> list[int]:
    """Acknowledge the open alerts among `alert_ids` in one conditional UPDATE (a dispatcher
    working through a box's excursion, one entry of many tubes); the ids it acknowledged.
    An id that is not open (someone else, or the sweep, was first) is left as it is; the
    caller tells which."""
    changed = sorted(connection.execute(
        update(ALERT).where(and_(ALERT.c.id.in_(alert_ids),
                                 ALERT.c.state == AlertState.OPEN.value))
        .values(state=AlertState.ACKNOWLEDGED.value, acknowledged_at=now, acknowledged_by=by)
        .returning(ALERT.c.id)).scalars())
    if changed:
        connection.execute(insert(CHANGE), [_change_row(alert_id, "acknowledged", now, by, None)
                                            for alert_id in changed])
        announce(connection)
    return changed


def resolve(connection: Connection, alert_id: int, by: str, note: str, now: datetime) -> None:
    """Resolve an open or acknowledged alert by hand. Conditional like `acknowledge`: a
    second resolution, whether by a person or by the sweep, finds it resolved and changes
    nothing."""
    if not note.strip():
        raise AlertError("resolving by hand needs a note saying what was done")
    changed = connection.execute(
        update(ALERT).where(and_(ALERT.c.id == alert_id,
                                 ALERT.c.state != AlertState.RESOLVED.value))
        .values(state=AlertState.RESOLVED.value, resolved_at=now, resolved_by=by,
                resolution_note=note.strip())
        .returning(ALERT.c.id)).scalar()
    if changed is None:
        state = _state_of(connection, alert_id)
        raise AlertConflict(f"alert {alert_id} is already resolved"
                            f"{_by_whom(connection, alert_id)}", alert_id, state)
    _record(connection, alert_id, "resolved", now, by, note.strip())


def _state_of(connection: Connection, alert_id: int) -> AlertState:
    state = connection.execute(select(ALERT.c.state).where(ALERT.c.id == alert_id)).scalar()
    if state is None:
        raise AlertNotFound(f"no alert {alert_id}")
    return AlertState(state)


def _by_whom(connection: Connection, alert_id: int) -> str:
    """' (by WHO at WHEN)' for a resolved alert, else the acknowledgement's, else ''."""
    row = connection.execute(select(ALERT.c.state, ALERT.c.resolved_by, ALERT.c.resolved_at,
                                    ALERT.c.acknowledged_by, ALERT.c.acknowledged_at)
                             .where(ALERT.c.id == alert_id)).one()
    who, when = ((row.resolved_by, row.resolved_at) if row.state == AlertState.RESOLVED.value
                 else (row.acknowledged_by, row.acknowledged_at))
    if who is None or when is None:
        return ""
    return f" (by {who} at {as_utc(when).isoformat()})"


def _record(connection: Connection, alert_id: int, change: str, now: datetime, by: str | None,
            note: str | None) -> None:
    connection.execute(insert(CHANGE).values(_change_row(alert_id, change, now, by, note)))
    announce(connection)


def _change_row(alert_id: int, change: str, now: datetime, by: str | None,
                note: str | None) -> dict:
    return {"alert_id": alert_id, "change": change, "at": now, "by": by, "note": note,
            "published": False}
