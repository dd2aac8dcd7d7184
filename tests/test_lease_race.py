"""Two schedulers take the same lease at the same moment (dronelog/turnaround/lease.py): the second
one's statement runs while the first one's transaction is still open, and exactly one of them
holds the lease afterwards, on SQLite and PostgreSQL, whether the lease was new or had just
expired (and one expiring this very instant is still held). On PostgreSQL the test waits until
the second one is seen waiting for the first one's lock, so the race is the one under test,
every run."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from dronelog.storage.tables import JobLease
from dronelog.turnaround.lease import take_lease

LEASE = JobLease.__table__
NOW = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


def _waiting_for_a_lock(engine) -> bool:
    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()")).scalar_one() > 0


def _race(engine) -> tuple[bool, bool]:
    """A takes the lease in an open transaction; B tries meanwhile; then A commits."""
    second: list[bool] = []
    with engine.connect() as first:
        first.begin()
        taken = take_lease(first, "turnaround", "scheduler-a", NOW, TTL)

        def try_second() -> None:
            with engine.begin() as connection:
                second.append(take_lease(connection, "turnaround", "scheduler-b", NOW, TTL))

        racer = threading.Thread(target=try_second)
        racer.start()
        if engine.dialect.name == "postgresql":
            deadline = datetime.now(UTC) + timedelta(seconds=20)
            while not _waiting_for_a_lock(engine):  # B's statement is blocked on A's row
                assert datetime.now(UTC) < deadline, "the second scheduler never waited"
        else:
            racer.join(0.2)  # SQLite: B waits on the file's write lock (busy timeout)
            assert racer.is_alive(), "the second scheduler did not wait for the first"
        first.commit()
    racer.join(30)
    return taken, second[0]


def _holder(engine) -> tuple[str, datetime]:
    with engine.connect() as connection:
        row = connection.execute(select(LEASE.c.holder, LEASE.c.expires_at)
                                 .where(LEASE.c.name == "turnaround")).one()
    return row.holder, row.expires_at.replace(tzinfo=UTC)


def _held_by_old(engine, until: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(LEASE.insert().values(name="turnaround", holder="old",
                                                 expires_at=until))


@pytest.mark.parametrize("before", ["new", "expired"])
def test_two_schedulers_racing_for_a_lease_one_wins(engine, before):
    if before == "expired":
        _held_by_old(engine, NOW - timedelta(microseconds=1))
    assert _race(engine) == (True, False)
    assert _holder(engine) == ("scheduler-a", NOW + TTL)


def test_a_lease_expiring_this_instant_is_still_held(engine):
    _held_by_old(engine, NOW)
    with engine.begin() as connection:
        assert not take_lease(connection, "turnaround", "scheduler-a", NOW, TTL)
    with engine.begin() as connection:
        assert take_lease(connection, "turnaround", "scheduler-a",
                          NOW + timedelta(microseconds=1), TTL)
    assert _holder(engine) == ("scheduler-a", NOW + timedelta(microseconds=1) + TTL)
