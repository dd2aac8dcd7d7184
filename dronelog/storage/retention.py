"""Retention of telemetry: thin it out after a while, drop it after longer.

Two knobs (settings), both off by default: after `telemetry_full_days` only the first
report of each drone in each minute is kept; after `telemetry_retention_days` nothing is
(None or 0 keeps it). Settings refuse either under 731 days: CAAC AC-92-FS-002 wants flight
data kept for 24 calendar months (docs/operations.md, "Retention").
Custody events, flight events and alerts are never touched: they are the record.

Telemetry can be deleted only here: the table's trigger refuses a DELETE unless the
transaction holds the retention permit (a row only this job writes, removed before it
commits). What it removes from a sealed flight it records (telemetry_seal.py), so that
verification tells thinning from tampering.

On PostgreSQL, telemetry is partitioned by month (`partitions.py`): expired months are
dropped whole, and the job also creates the months ahead. On SQLite, rows are deleted in
chunks. Thinning goes one day per step and remembers how far it got (`job_state`), so each
run does a bounded amount of work and a restart carries on.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, delete, func, insert, select, text

from dronelog.storage import partitions, telemetry_seal
from dronelog.storage.portable import as_utc, upsert
from dronelog.storage.tables import JobState, RetentionPermit, TelemetryPoint

TEL = TelemetryPoint.__table__
STATE = JobState.__table__
PERMIT = RetentionPermit.__table__
THINNED_UNTIL = "telemetry_thinned_until"
DELETE_CHUNK = 50_000


@dataclass
class RetentionRun:
    partitions_created: list[str] = field(default_factory=list)
    partitions_dropped: list[str] = field(default_factory=list)
    rows_deleted: int = 0
    rows_thinned: int = 0
    thinned_until: datetime | None = None


def run(connection: Connection, now: datetime, full_days: float | None,
        retention_days: float | None, max_days: int = 7) -> RetentionRun:
    """One pass: partitions ahead, expired telemetry out, up to `max_days` days thinned.
    Run it in one transaction: the permit to delete telemetry lasts as long as it."""
    connection.execute(insert(PERMIT).values(holder="retention"))
    result = _run(connection, now, full_days, retention_days, max_days)
    connection.execute(delete(PERMIT))
    return result


def _run(connection: Connection, now: datetime, full_days: float | None,
         retention_days: float | None, max_days: int) -> RetentionRun:
    result = RetentionRun()
    partitioned = partitions.is_partitioned(connection)
    if partitioned:
        result.partitions_created = partitions.ensure_months(connection, now,
                                                             now + timedelta(days=62))
    cutoff = now - timedelta(days=retention_days) if retention_days else None
    if cutoff is not None:
        if partitioned:
            result.partitions_dropped = _drop_months_before(connection, cutoff, now)
        result.rows_deleted = _delete_before(connection, cutoff, now)
    if full_days:
        result.rows_thinned, result.thinned_until = _thin(
            connection, now - timedelta(days=full_days), cutoff, max_days, now)
    return result


def _drop_months_before(connection: Connection, cutoff: datetime, now: datetime) -> list[str]:
    dropped = []
    for name, (start, end) in sorted(partitions.monthly_partitions(connection).items()):
        if end <= cutoff:
            removal = telemetry_seal.before_removal(
                connection, and_(TEL.c.event_time >= start, TEL.c.event_time < end))
            connection.execute(text(f"DROP TABLE {name}"))
            telemetry_seal.after_removal(connection, removal, now, "expired")
            dropped.append(name)
    return dropped


def _delete_before(connection: Connection, cutoff: datetime, now: datetime) -> int:
    """Rows older than `cutoff` (on PostgreSQL: those left in the default partition or in the
    month that straddles the cutoff)."""
    removal = telemetry_seal.before_removal(connection, TEL.c.event_time < cutoff)
    deleted = 0
    while True:
        ids = select(TEL.c.id).where(TEL.c.event_time < cutoff).limit(DELETE_CHUNK)
        count = connection.execute(delete(TEL).where(TEL.c.id.in_(ids.scalar_subquery()))
                                   ).rowcount
        deleted += count
        if count < DELETE_CHUNK:
            telemetry_seal.after_removal(connection, removal, now, "expired")
            return deleted


def _thin(connection: Connection, before: datetime, cutoff: datetime | None,
          max_days: int, now: datetime) -> tuple[int, datetime | None]:
    """Keep the first report per drone and minute in whole days older than `before`."""
    done = connection.execute(select(STATE.c.value).where(STATE.c.name == THINNED_UNTIL)
                              ).scalar()
    start = datetime.fromisoformat(done) if done else None
    if start is None:
        oldest = as_utc(connection.execute(select(func.min(TEL.c.event_time))).scalar())
        if oldest is None:
            return 0, None
        start = oldest.replace(hour=0, minute=0, second=0, microsecond=0)
    if cutoff is not None:
        start = max(start, cutoff.replace(hour=0, minute=0, second=0, microsecond=0))
    thinned = 0
    for _ in range(max_days):
        end = start + timedelta(days=1)
        if end > before:
            break
        thinned += _thin_range(connection, start, end, now)
        start = end
    upsert(connection, STATE, [{"name": THINNED_UNTIL, "value": start.isoformat(),
                                "updated_at": now}], ["name"])
    return thinned, start


def _thin_range(connection: Connection, start: datetime, end: datetime, now: datetime) -> int:
    minute = (func.date_trunc("minute", TEL.c.event_time)
              if connection.dialect.name == "postgresql"
              else func.strftime("%Y-%m-%d %H:%M", TEL.c.event_time))
    in_range = and_(TEL.c.event_time >= start, TEL.c.event_time < end)
    keep = (select(func.min(TEL.c.id)).where(in_range)
            .group_by(TEL.c.drone_id, minute).scalar_subquery())
    removal = telemetry_seal.before_removal(connection, in_range)
    thinned = connection.execute(delete(TEL).where(and_(in_range, TEL.c.id.not_in(keep)))
                                 ).rowcount
    telemetry_seal.after_removal(connection, removal, now, "thinned")
    return thinned
