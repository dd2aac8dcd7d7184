"""Stored alerts and their changes. Every change is a row of `alert_change`, which doubles as
the outbox the notifier publishes from, so no change is lost between database and MQTT."""

import json
from datetime import datetime

from sqlalchemy import Connection, and_, insert, select, update

from dronelog.domain.alerts import (
    LATCHED,
    AlertKind,
    AlertState,
    Condition,
    KnownAlert,
    Reconciliation,
)
from dronelog.storage.tables import Alert, AlertChange

ALERT = Alert.__table__
CHANGE = AlertChange.__table__


_LATCHED_KINDS = sorted(kind.value for kind in LATCHED)


class AlertError(ValueError):
    """A change the alert's state does not allow (the message says why)."""


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


def apply(connection: Connection, changes: Reconciliation, now: datetime) -> list[int]:
    """Open and resolve alerts as reconciled, in bulk; the ids of the alerts that changed."""
    opened = _open_many(connection, changes.to_open, now)
    resolved = [alert_id for alert_id, _ in changes.to_resolve]
    for start in range(0, len(resolved), 500):
        connection.execute(update(ALERT).where(ALERT.c.id.in_(resolved[start:start + 500]))
                           .values(state=AlertState.RESOLVED.value, resolved_at=now,
                                   resolved_by="dronelog", resolution_note="condition cleared"))
    change_rows = [_change_row(alert_id, "opened", now, "dronelog", None) for alert_id in opened]
    change_rows += [_change_row(alert_id, "resolved", now, "dronelog", why)
                    for alert_id, why in changes.to_resolve]
    if change_rows:
        connection.execute(insert(CHANGE), change_rows)
    return opened + resolved


def _open_many(connection: Connection, conditions: list[Condition], now: datetime) -> list[int]:
    if not conditions:
        return []
    rows = [{"subject_kind": c.subject_kind, "subject_id": c.subject_id, "kind": c.kind.value,
             "severity": c.severity.value, "state": AlertState.OPEN.value, "message": c.message,
             "details": json.dumps(c.details, default=str, sort_keys=True),
             "site_id": c.site_id, "drone_id": c.drone_id, "opened_at": now}
            for c in conditions]
    result = connection.execute(
        insert(ALERT).returning(ALERT.c.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def acknowledge(connection: Connection, alert_id: int, by: str, now: datetime) -> None:
    state = _state_of(connection, alert_id)
    if state is not AlertState.OPEN:
        raise AlertError(f"alert {alert_id} is {state.value}; only an open alert can be "
                         "acknowledged")
    connection.execute(update(ALERT).where(ALERT.c.id == alert_id).values(
        state=AlertState.ACKNOWLEDGED.value, acknowledged_at=now, acknowledged_by=by))
    _record(connection, alert_id, "acknowledged", now, by, None)


def resolve(connection: Connection, alert_id: int, by: str, note: str, now: datetime) -> None:
    if not note.strip():
        raise AlertError("resolving by hand needs a note saying what was done")
    state = _state_of(connection, alert_id)
    if state is AlertState.RESOLVED:
        raise AlertError(f"alert {alert_id} is already resolved")
    connection.execute(update(ALERT).where(ALERT.c.id == alert_id).values(
        state=AlertState.RESOLVED.value, resolved_at=now, resolved_by=by,
        resolution_note=note.strip()))
    _record(connection, alert_id, "resolved", now, by, note.strip())


def _state_of(connection: Connection, alert_id: int) -> AlertState:
    state = connection.execute(select(ALERT.c.state).where(ALERT.c.id == alert_id)).scalar()
    if state is None:
        raise AlertError(f"no alert {alert_id}")
    return AlertState(state)


def _record(connection: Connection, alert_id: int, change: str, now: datetime, by: str | None,
            note: str | None) -> None:
    connection.execute(insert(CHANGE).values(_change_row(alert_id, change, now, by, note)))


def _change_row(alert_id: int, change: str, now: datetime, by: str | None,
                note: str | None) -> dict:
    return {"alert_id": alert_id, "change": change, "at": now, "by": by, "note": note,
            "published": False}
