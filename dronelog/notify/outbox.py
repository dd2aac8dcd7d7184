"""The messages as rows of `notification`, and their sending.

A planned message is stored once per key. Sending: the messages due (planned, `not_before`
passed), per channel under its hourly limit (`ration`: alone, or as a digest of the rest);
each message (or digest) is sent and marked in one transaction, so a crash between the two
sends it again: at least once, never lost. A failed attempt waits `retry_delay` and is
tried again, up to MAX_ATTEMPTS; then it is `failed`.
"""

import json
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy import Connection, Engine, and_, func, select, update

from dronelog.domain.notice_text import Notice, digest_notice
from dronelog.domain.notifications import RATE_WINDOW, ration, retry_delay
from dronelog.notify.channels import Channels
from dronelog.notify.sources import Planned
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import Notification

log = structlog.get_logger("dronelog.notify")
NOTIFICATION = Notification.__table__
DUE_BATCH = 200
# builds a message's attachments from its `attachment` spec: (file name, content) pairs
Attachments = Callable[[Connection, dict, str], list[tuple[str, bytes]]]


def known_keys(connection: Connection, keys: Iterable[str]) -> set[str]:
    keys = list(keys)
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        found.update(connection.execute(select(NOTIFICATION.c.dedupe_key).where(
            NOTIFICATION.c.dedupe_key.in_(keys[start:start + 500]))).scalars())
    return found


def store(connection: Connection, planned: list[Planned], now: datetime) -> int:
    """Store the planned messages not stored yet; how many were new."""
    already = known_keys(connection, (p.key for p in planned))
    rows, seen = [], set(already)
    for item in planned:
        if item.key in seen:
            continue
        seen.add(item.key)
        rows.append({
            "dedupe_key": item.key, "route_id": item.route.id, "source": item.route.source.value,
            "subject": item.subject[:128], "channel": item.route.channel,
            "recipients": json.dumps(list(item.route.recipients)),
            "language": item.route.language, "title": item.notice.title[:300],
            "body": item.notice.body,
            "attachment": json.dumps(item.attachment) if item.attachment else None,
            "state": "planned", "created_at": now, "not_before": item.not_before,
            "attempts": 0})
    if rows:
        connection.execute(NOTIFICATION.insert(), rows)
    return len(rows)


def deliver(engine: Engine, channels: Channels, now: datetime, per_hour: int,
            attachments: Attachments) -> tuple[int, int]:
    """Send what is due; (messages sent, attempts failed)."""
    with engine.connect() as connection:
        due = connection.execute(select(NOTIFICATION).where(and_(
            NOTIFICATION.c.state == "planned", NOTIFICATION.c.not_before <= now))
            .order_by(NOTIFICATION.c.not_before, NOTIFICATION.c.id).limit(DUE_BATCH)).all()
        by_channel: dict[str, list] = defaultdict(list)
        for row in due:
            by_channel[row.channel].append(row)
        recent = {channel: _recent_deliveries(connection, channel, now)
                  for channel in by_channel}
    sent = failed = 0
    for channel, rows in by_channel.items():
        portion = ration(rows, recent[channel], now, per_hour, group=lambda row: row.recipients)
        for group in [[row] for row in portion.single] + portion.digests:
            if _send(engine, channels, group, now, attachments):
                sent += 1
            else:
                failed += 1
    return sent, failed


def _recent_deliveries(connection: Connection, channel: str, now: datetime) -> list[datetime]:
    """When the channel's messages of the last hour went (a digest counts once)."""
    rows = connection.execute(
        select(NOTIFICATION.c.delivery, func.max(NOTIFICATION.c.sent_at))
        .where(and_(NOTIFICATION.c.channel == channel, NOTIFICATION.c.state == "sent",
                    NOTIFICATION.c.sent_at > now - RATE_WINDOW))
        .group_by(NOTIFICATION.c.delivery)).all()
    return [as_utc(at) for _, at in rows]


def _send(engine: Engine, channels: Channels, rows: list, now: datetime,
          attachments: Attachments) -> bool:
    """Send one message (a row, or several as a digest) and mark its rows, in one
    transaction."""
    first = rows[0]
    if len(rows) == 1:
        notice = Notice(first.title, first.body)
    else:
        notice = digest_notice([Notice(row.title, row.body) for row in rows], first.language)
    recipients = json.loads(first.recipients)
    ids = [row.id for row in rows]
    with engine.begin() as connection, tempfile.TemporaryDirectory() as folder:
        paths = []
        if len(rows) == 1 and first.attachment and _takes_attachments(channels, first.channel):
            for name, content in attachments(connection, json.loads(first.attachment),
                                             first.language):
                path = Path(folder) / name
                path.write_bytes(content)
                paths.append(path)
        error = channels.send(first.channel, recipients, notice.title, notice.body, paths)
        if error is None:
            connection.execute(update(NOTIFICATION).where(NOTIFICATION.c.id.in_(ids)).values(
                state="sent", sent_at=now, delivery=uuid.uuid4().hex,
                attempts=NOTIFICATION.c.attempts + 1, last_error=None))
            return True
        attempts = max(row.attempts for row in rows) + 1
        delay = retry_delay(attempts)
        log.warning("notification not sent", channel=first.channel, ids=ids,
                    attempts=attempts, error=error, gave_up=delay is None)
        connection.execute(update(NOTIFICATION).where(NOTIFICATION.c.id.in_(ids)).values(
            attempts=attempts, last_error=error[:500],
            state="failed" if delay is None else "planned",
            not_before=now if delay is None else now + delay))
        return False


def _takes_attachments(channels: Channels, channel: str) -> bool:
    info = channels.info(channel)
    return info is not None and info.email
