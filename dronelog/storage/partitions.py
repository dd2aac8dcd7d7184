"""Monthly partitions of `telemetry` on PostgreSQL (migration 0007 makes it partitioned).

Partitions are named `telemetry_yYYYYmMM` and hold one calendar month in UTC; a default
partition catches anything outside them. Old telemetry then goes by dropping whole months,
which takes no time and leaves no bloat, instead of deleting millions of rows.
"""

from datetime import UTC, datetime

from sqlalchemy import Connection, text

PARENT = "telemetry"


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"{PARENT}_y{start.year:04d}m{start.month:02d}"


def is_partitioned(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    return connection.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c "
        "ON c.oid = p.partrelid WHERE c.relname = :name AND pg_table_is_visible(c.oid))"),
        {"name": PARENT}).scalar_one()


def monthly_partitions(connection: Connection) -> dict[str, tuple[datetime, datetime]]:
    """The month partitions that exist: name -> (from, to)."""
    rows = connection.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :name"), {"name": PARENT})
    found = {}
    for (name,) in rows:
        if name.startswith(f"{PARENT}_y"):
            start = datetime(int(name[-7:-3]), int(name[-2:]), 1, tzinfo=UTC)
            found[name] = (start, next_month(start))
    return found


def ensure_months(connection: Connection, first: datetime, last: datetime) -> list[str]:
    """Create the month partitions from `first`'s month to `last`'s that do not exist."""
    existing = monthly_partitions(connection)
    created = []
    start = month_start(first)
    while start <= last:
        name = partition_name(start)
        if name not in existing:
            connection.execute(text(
                f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES FROM "
                f"('{start.isoformat()}') TO ('{next_month(start).isoformat()}')"))
            created.append(name)
        start = next_month(start)
    return created
