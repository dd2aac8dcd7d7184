"""What differs between SQLite and PostgreSQL, kept in one place: the dialect's upserting
INSERT, and times (stored in UTC; SQLite hands them back naive)."""

from datetime import UTC, datetime

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def as_utc(moment: datetime | None) -> datetime | None:
    """A stored or given time as an aware UTC datetime (naive means UTC)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def dialect_insert(dialect_name: str):
    """The INSERT construct with ON CONFLICT support for this database."""
    return postgresql.insert if dialect_name == "postgresql" else sqlite.insert


def upsert(connection: Connection, table: Table, rows: list[dict], keys: list[str]) -> None:
    """Insert rows, or update every other column where `keys` already exist."""
    if not rows:
        return
    statement = dialect_insert(connection.dialect.name)(table)
    statement = statement.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys})
    connection.execute(statement, rows)


def insert_new(connection: Connection, table: Table, rows: list[dict], keys: list[str]) -> None:
    """Insert the rows whose `keys` are not stored yet; leave the others as they are."""
    if rows:
        insert = dialect_insert(connection.dialect.name)
        connection.execute(insert(table).on_conflict_do_nothing(index_elements=keys), rows)
