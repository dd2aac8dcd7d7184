"""The telemetry hot path on PostgreSQL: `COPY` into a temporary staging table, then one
`INSERT ... SELECT ... ON CONFLICT (event_id, event_time) DO NOTHING RETURNING event_id`.

SQLAlchemy's multi-row INSERT sends each 500-row batch as one statement with thousands of
placeholders, which psycopg parses anew for every batch (its parse cache holds only short
statements); that parsing took most of the PostgreSQL ingest time (docs/benchmarks.md).
COPY sends the rows as data. On SQLite the Core INSERT is as fast as a hand-made
`executemany` (measured), so SQLite keeps the portable path.

Errors are raised as SQLAlchemy's exception classes, so the persist stage tells data errors
(isolate the poison) from outages (retry) as it does for every other write.
"""

from typing import Any
from uuid import UUID

import psycopg
from sqlalchemy import Connection, exc

from dronelog.storage.tables import TelemetryPoint

TABLE = TelemetryPoint.__table__
COLUMNS = [column.name for column in TABLE.columns if column.name != "id"]
_STAGE = "telemetry_stage"
# Unique on a partitioned table must hold the partition key (migration 0007); a redelivered
# event carries the same time, so this still stores each event once.
CONFLICT_KEY = "event_id, event_time"


def copy_telemetry(connection: Connection, rows: list[dict[str, Any]]) -> set[UUID]:
    """Insert the rows not yet stored; the event ids of the new rows."""
    columns = ", ".join(COLUMNS)
    connection.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} AS SELECT {columns} FROM {TABLE.name} "
        "WITH NO DATA")
    connection.exec_driver_sql(f"TRUNCATE {_STAGE}")
    statement = f"COPY {_STAGE} ({columns}) FROM STDIN"
    try:
        with connection.connection.driver_connection.cursor() as cursor, \
                cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[column] for column in COLUMNS])
    except psycopg.Error as error:
        raise exc.DBAPIError.instance(statement, None, error, psycopg.Error) from error
    return set(connection.exec_driver_sql(
        f"INSERT INTO {TABLE.name} ({columns}) SELECT {columns} FROM {_STAGE} "
        f"ON CONFLICT ({CONFLICT_KEY}) DO NOTHING RETURNING event_id").scalars())
