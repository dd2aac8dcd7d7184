"""Stored alerts and their changes. Every change is a row of `alert_change`, which doubles as
the outbox the notifier publishes from, so no change is lost between database and MQTT."""

import json
from datetime import datetime

from sqlalchemy import Connection, and_, insert, select, update

from dronelog.domain.alerts import AlertKind, AlertState, Condition, KnownAlert, Reconciliation
from dronelog.storage.tables import Alert, AlertChange

ALERT = Alert.__table__
CHANGE = AlertChange.__table__


class AlertError(ValueError):
    """A change the alert's state does not allow (the message says why)."""


def known_alerts(connection: Connection, subject_ids: set[str]) -> list[KnownAlert]:
    """Active alerts, and resolved latched ones of the given subjects."""
    rows = list(connection.execute(select(ALERT.c.id, ALERT.c.subject_kind, ALERT.c.subject_id,
                                          ALERT.c.kind, ALERT.c.state)
                                   .where(ALERT.c.state != AlertState.RESOLVED.value)))
    ids = sorted(subject_ids)
    for start in range(0, len(ids), 500):
        rows += list(connection.execute(
            select(ALERT.c.id, ALERT.c.subject_kind, ALERT.c.subject_id, ALERT.c.kind,
                   ALERT.c.state)
            .where(and_(ALERT.c.state == AlertState.RESOLVED.value,
                        ALERT.c.subject_id.in_(ids[start:start + 500])))))
    return [KnownAlert(r.id, r.subject_kind, r.subject_id, AlertKind(r.kind),
                       AlertState(r.state)) for r in rows]


def apply(connection: Connection, changes: Reconciliation, now: datetime) -> list[int]:
    """Open and resolve alerts as reconciled; the ids of the alerts that changed."""
    changed = []
    for condition in changes.to_open:
        changed.append(open_alert(connection, condition, now))
    for alert_id, why in changes.to_resolve:
        connection.execute(update(ALERT).where(ALERT.c.id == alert_id).values(
            state=AlertState.RESOLVED.value, resolved_at=now, resolved_by="dronelog",
            resolution_note=why))
        _record(connection, alert_id, "resolved", now, "dronelog", why)
        changed.append(alert_id)
    return changed


def open_alert(connection: Connection, condition: Condition, now: datetime) -> int:
    alert_id = connection.execute(insert(ALERT).values(
        subject_kind=condition.subject_kind, subject_id=condition.subject_id,
        kind=condition.kind.value, severity=condition.severity.value,
        state=AlertState.OPEN.value, message=condition.message,
        details=json.dumps(condition.details, default=str, sort_keys=True),
        site_id=condition.site_id, drone_id=condition.drone_id, opened_at=now,
    ).returning(ALERT.c.id)).scalar_one()
    _record(connection, alert_id, "opened", now, "dronelog", None)
    return alert_id


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
    connection.execute(insert(CHANGE).values(alert_id=alert_id, change=change, at=now, by=by,
                                             note=note, published=False))
