"""A lease in the database: with several schedulers running, only the holder does a job.

Taking the lease is one conditional UPDATE (or an INSERT for a new job), atomic on SQLite and
PostgreSQL alike: it succeeds when the lease is free, expired, or already ours. A holder
that dies loses the lease when it expires, and another scheduler takes over.
"""

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, and_, or_, update

from dronelog.storage.portable import dialect_insert
from dronelog.storage.tables import JobLease

LEASE = JobLease.__table__


def take_lease(connection: Connection, name: str, holder: str, now: datetime,
               ttl: timedelta) -> bool:
    """True if `holder` holds the lease on `name` until now + ttl."""
    expires = now + ttl
    taken = connection.execute(
        update(LEASE)
        .where(and_(LEASE.c.name == name,
                    or_(LEASE.c.holder == holder, LEASE.c.expires_at < now)))
        .values(holder=holder, expires_at=expires).returning(LEASE.c.name)
    ).first()
    if taken:
        return True
    insert = dialect_insert(connection.dialect.name)
    created = connection.execute(
        insert(LEASE).values(name=name, holder=holder, expires_at=expires)
        .on_conflict_do_nothing(index_elements=["name"]).returning(LEASE.c.name)
    ).first()
    return created is not None


def release_lease(connection: Connection, name: str, holder: str) -> None:
    connection.execute(update(LEASE).where(and_(LEASE.c.name == name, LEASE.c.holder == holder))
                       .values(expires_at=datetime(1970, 1, 1, tzinfo=UTC)))
