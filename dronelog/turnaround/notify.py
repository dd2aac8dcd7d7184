"""Publishing alert changes: to MQTT under `<prefix>/alerts/...` and, optionally, to a webhook.

`alert_change` is an outbox. A change is marked published only after the broker acknowledged
it (QoS 1), so a crash in between publishes it again: delivery is at least once, and the
message's `event_id` (derived from the change's id) lets a consumer drop the repeat. A failed
webhook delivery is retried, in order, on each later pass of the job, up to
WEBHOOK_MAX_ATTEMPTS times.
"""

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime

import structlog
from sqlalchemy import Connection, and_, select, update

from dronelog.domain.alert_text import SiteLabel, render_or
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import Alert, AlertChange
from dronelog.turnaround import alert_store

log = structlog.get_logger("dronelog.alerts")

ALERT = Alert.__table__
CHANGE = AlertChange.__table__
_NAMESPACE = uuid.UUID("6f1d3c2e-5b4a-4f8e-9d7c-0a1b2c3d4e5f")
WEBHOOK_MAX_ATTEMPTS = 8


def alert_topic(prefix: str, kind: str, subject_kind: str, subject_id: str) -> str:
    return f"{prefix}/alerts/{kind}/{subject_kind}/{subject_id}"


def change_message(change, alert, language: str = "zh",
                   sites: Mapping[str, SiteLabel] | None = None) -> dict:
    """The message of one alert change: the alert as a code (`code`, its kind) with its
    parameters (`params`, times in UTC) and their `text` in `language`, in the time zone of
    the alert's site; `message` is the text stored when it was opened."""
    params = json.loads(alert.details)
    return {
        "schema_version": 1,
        "event_id": str(uuid.uuid5(_NAMESPACE, f"alert-change-{change.id}")),
        "change": change.change, "at": _iso(change.at), "by": change.by, "note": change.note,
        "alert": {
            "id": alert.id, "kind": alert.kind, "severity": alert.severity,
            "state": alert.state, "subject_kind": alert.subject_kind,
            "subject_id": alert.subject_id, "code": alert.kind, "params": params,
            "language": language,
            "text": render_or(alert.message, alert.kind, params, language, sites),
            "message": alert.message, "details": params, "site_id": alert.site_id,
            "origin_site_id": alert.origin_site_id, "at_site_id": alert.at_site_id,
            "drone_id": alert.drone_id, "opened_at": _iso(alert.opened_at),
            "acknowledged_at": _iso(alert.acknowledged_at),
            "acknowledged_by": alert.acknowledged_by,
            "resolved_at": _iso(alert.resolved_at), "resolved_by": alert.resolved_by,
            "resolution_note": alert.resolution_note,
        },
    }


class AlertPublisher:
    """Publishes pending alert changes with `publish(topic, payload) -> bool` (True once the
    broker acknowledged it)."""

    def __init__(self, prefix: str, publish: Callable[[str, bytes], bool],
                 webhook_url: str | None = None, webhook_timeout_s: float = 5.0,
                 language: str = "zh") -> None:
        self.prefix = prefix
        self.language = language
        self.publish = publish
        self.webhook_url = webhook_url
        self.webhook_timeout_s = webhook_timeout_s

    def flush(self, connection: Connection) -> int:
        published = 0
        rows = connection.execute(
            select(CHANGE.c.id.label("change_id"), CHANGE.c.change, CHANGE.c.at, CHANGE.c.by,
                   CHANGE.c.note, ALERT)
            .join(ALERT, ALERT.c.id == CHANGE.c.alert_id)
            .where(CHANGE.c.published.is_(False)).order_by(CHANGE.c.id).limit(500)).all()
        sites = alert_store.site_labels(connection) if rows else {}
        for row in rows:
            change = _Change(row.change_id, row.change, row.at, row.by, row.note)
            message = json.dumps(change_message(change, row, self.language, sites),
                                 ensure_ascii=False).encode()
            topic = alert_topic(self.prefix, row.kind, row.subject_kind, row.subject_id)
            if not self.publish(topic, message):
                log.warning("alert change not acknowledged by the broker; will retry",
                            change_id=row.change_id)
                break
            connection.execute(update(CHANGE).where(CHANGE.c.id == row.change_id)
                               .values(published=True))
            published += 1
        if self.webhook_url:
            self._deliver_webhooks(connection)
        return published

    def _deliver_webhooks(self, connection: Connection) -> None:
        rows = connection.execute(
            select(CHANGE.c.id.label("change_id"), CHANGE.c.change, CHANGE.c.at, CHANGE.c.by,
                   CHANGE.c.note, CHANGE.c.webhook_attempts, ALERT)
            .join(ALERT, ALERT.c.id == CHANGE.c.alert_id)
            .where(and_(CHANGE.c.webhook_delivered.is_(False),
                        CHANGE.c.webhook_attempts < WEBHOOK_MAX_ATTEMPTS))
            .order_by(CHANGE.c.id).limit(100)).all()
        sites = alert_store.site_labels(connection) if rows else {}
        for row in rows:
            change = _Change(row.change_id, row.change, row.at, row.by, row.note)
            delivered = self._post(change_message(change, row, self.language, sites))
            connection.execute(update(CHANGE).where(CHANGE.c.id == row.change_id).values(
                webhook_delivered=delivered, webhook_attempts=row.webhook_attempts + 1))
            if not delivered:
                break  # the endpoint is failing: retry on a later pass, in order

    def _post(self, message: dict) -> bool:
        request = urllib.request.Request(
            self.webhook_url, data=json.dumps(message, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.webhook_timeout_s) as response:
                return 200 <= response.status < 300
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            log.warning("webhook delivery failed; will retry", error=str(error))
            return False


class _Change:
    def __init__(self, change_id: int, change: str, at: datetime, by: str | None,
                 note: str | None) -> None:
        self.id, self.change, self.at, self.by, self.note = change_id, change, at, by, note


def _iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment is not None else None
