"""What differs between SQLite and PostgreSQL, kept in one place: the dialect's upserting
INSERT, times (stored in UTC; SQLite hands them back naive), reading a large table in
pages, and a value out of a JSON text column."""

from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import JSON, Column, ColumnElement, Connection, Row, Table, cast, func, select
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


def pages(connection: Connection, table: Table, key: Column, size: int) -> Iterator[list[Row]]:
    """Every row of `table` in `key` order, `size` rows at a time (keyset pagination: each
    page is one short query however large the table grows); `key` must be unique."""
    last = None
    while True:
        query = select(table).order_by(key).limit(size)
        if last is not None:
            query = query.where(key > last)
        rows = connection.execute(query).all()
        if rows:
            yield rows
        if len(rows) < size:
            return
        last = rows[-1]._mapping[key]


def json_text(dialect_name: str, column: Column, key: str) -> ColumnElement:
    """The text of `key` in a TEXT column holding a JSON object (NULL when absent or null).
    SQLite's json_extract on the text itself (a CAST to JSON there would be a numeric
    affinity); PostgreSQL's ->> on the text cast to json."""
    if dialect_name == "postgresql":
        return cast(column, JSON)[key].as_string()
    return func.json_extract(column, f"$.{key}")
