"""Telemetry retention on SQLite and PostgreSQL: thinning to one report per drone and
minute, expiry (whole month partitions dropped on PostgreSQL), and the partitioned table
still storing each event once."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from dronelog.clock import ManualClock
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.storage import partitions, retention
from dronelog.storage.writer import BatchWriter
from tests.support import LAYOUT, count, telemetry

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def write_minutes(engine, drone: str, start: datetime, minutes: int, per_minute: int = 6
                  ) -> None:
    """`per_minute` reports a minute for `minutes` minutes from `start`, as stored by the
    ingester's writer."""
    step = timedelta(seconds=60 / per_minute)
    events = [telemetry(drone, seq=i, at=start + i * step) for i in range(minutes * per_minute)]
    topic = LAYOUT.telemetry(drone)
    clock = ManualClock(start + timedelta(minutes=minutes))
    BatchWriter(engine, clock).write(
        [Accepted(Delivery(topic, b"", clock.now()), LAYOUT.parse(topic), e) for e in events],
        [])


def test_old_telemetry_is_thinned_to_one_report_per_drone_and_minute(engine):
    old = NOW - timedelta(days=40)
    day = old.replace(hour=0, minute=0, second=0, microsecond=0)
    with engine.begin() as connection:
        if partitions.is_partitioned(connection):
            partitions.ensure_months(connection, day, NOW)
    write_minutes(engine, "uav-01", day + timedelta(hours=10), 30)
    write_minutes(engine, "uav-02", day + timedelta(hours=10), 30)
    write_minutes(engine, "uav-01", NOW - timedelta(days=1), 10)  # recent: kept whole
    assert count(engine, "SELECT count(*) FROM telemetry") == 30 * 6 * 2 + 60
    with engine.begin() as connection:
        result = retention.run(connection, NOW, full_days=30, retention_days=365,
                               max_days=60)
    assert result.rows_thinned == 2 * (30 * 6 - 30)
    assert count(engine, "SELECT count(*) FROM telemetry") == 30 * 2 + 60
    assert result.thinned_until == (NOW - timedelta(days=30)).replace(hour=0, minute=0,
                                                                       second=0)
    with engine.begin() as connection:
        again = retention.run(connection, NOW, full_days=30, retention_days=365)
    assert again.rows_thinned == 0 and again.thinned_until == result.thinned_until


def test_expired_telemetry_goes_and_recent_stays(engine):
    expired = NOW - timedelta(days=400)
    with engine.begin() as connection:
        if partitions.is_partitioned(connection):
            partitions.ensure_months(connection, expired, NOW)
    write_minutes(engine, "uav-01", expired, 5, per_minute=1)
    write_minutes(engine, "uav-01", NOW - timedelta(hours=2), 5, per_minute=1)
    with engine.begin() as connection:
        result = retention.run(connection, NOW, full_days=30, retention_days=365)
    assert count(engine, "SELECT count(*) FROM telemetry") == 5
    if engine.dialect.name == "postgresql":
        assert partitions.partition_name(partitions.month_start(expired)) in \
            result.partitions_dropped
        assert result.rows_deleted == 0  # the month went whole
        assert partitions.partition_name(partitions.month_start(NOW)) not in \
            result.partitions_dropped
    else:
        assert result.rows_deleted == 5
    with engine.begin() as connection:
        forever = retention.run(connection, NOW + timedelta(days=3000), full_days=30,
                                retention_days=0, max_days=0)
    assert forever.rows_deleted == 0 and not forever.partitions_dropped


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_telemetry_is_partitioned_by_month_and_still_stored_once(engine):
    with engine.connect() as connection:
        assert partitions.is_partitioned(connection)
        keys = connection.execute(text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'telemetry'::regclass AND contype = 'u'")).scalars().all()
    assert keys == ["UNIQUE (event_id, event_time)"]
    # 19 s into this month (UTC): the 20 reports, one a second back from now, begin exactly
    # at the month's first instant (the partition's inclusive lower bound) and all fall in
    # it. With the wall clock, the first 19 s of a month sent some to the month before
    # (at 00:00:05 on the 1st only 6 were in this month's partition). This month, not a
    # fixed date: the migration made the partitions around the wall clock.
    clock = ManualClock(partitions.month_start(datetime.now(UTC)) + timedelta(seconds=19))
    events = [telemetry("uav-05", seq=i, at=clock.now() - timedelta(seconds=i))
              for i in range(20)]
    topic = LAYOUT.telemetry("uav-05")
    batch = [Accepted(Delivery(topic, b"", clock.now()), LAYOUT.parse(topic), e)
             for e in events]
    assert BatchWriter(engine, clock).write(batch, []).stored["telemetry"] == 20
    again = BatchWriter(engine, clock).write(batch, [])
    assert (again.stored["telemetry"], again.duplicates) == (0, 20)
    month = partitions.partition_name(partitions.month_start(clock.now()))
    assert count(engine, f"SELECT count(*) FROM {month}") == 20
    with engine.begin() as connection:
        created = retention.run(connection, clock.now(), 30, 365).partitions_created
        assert created == []  # the migration made the months ahead already
        ahead = partitions.monthly_partitions(connection)
    assert partitions.partition_name(partitions.next_month(partitions.month_start(
        clock.now()))) in ahead
