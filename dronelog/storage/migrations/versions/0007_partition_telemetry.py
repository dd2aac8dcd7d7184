"""partition telemetry by month on PostgreSQL

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 03:00:00

PostgreSQL only (SQLite keeps one table). A partitioned table's unique keys must hold the
partition key, so the event id's uniqueness becomes (event_id, event_time): a redelivered
event carries the same time, so it is still stored once (dronelog/storage/telemetry_copy.py).
The rows are copied into the new table in this migration's transaction.
"""

from datetime import UTC, datetime, timedelta

from alembic import op
from sqlalchemy import text

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    from dronelog.storage import partitions

    op.execute("CREATE TABLE telemetry_partitioned (LIKE telemetry INCLUDING DEFAULTS) "
               "PARTITION BY RANGE (event_time)")
    op.execute("ALTER TABLE telemetry_partitioned ADD PRIMARY KEY (id, event_time)")
    op.execute("ALTER TABLE telemetry_partitioned ADD CONSTRAINT telemetry_event_id_time_key "
               "UNIQUE (event_id, event_time)")
    op.execute("CREATE TABLE telemetry_default PARTITION OF telemetry_partitioned DEFAULT")
    oldest, newest = connection.execute(text(
        "SELECT min(event_time), max(event_time) FROM telemetry")).one()
    now = datetime.now(UTC)
    op.execute("ALTER TABLE telemetry RENAME TO telemetry_unpartitioned")
    op.execute("ALTER TABLE telemetry_partitioned RENAME TO telemetry")
    partitions.ensure_months(connection, min(oldest or now, now - timedelta(days=31)),
                             max(newest or now, now) + timedelta(days=62))
    op.execute("INSERT INTO telemetry SELECT * FROM telemetry_unpartitioned")
    op.execute("ALTER SEQUENCE telemetry_id_seq OWNED BY telemetry.id")
    op.execute("DROP TABLE telemetry_unpartitioned")
    op.execute("CREATE INDEX ix_telemetry_drone_time ON telemetry (drone_id, event_time)")
    op.execute("CREATE INDEX ix_telemetry_flight_time ON telemetry (flight_id, event_time)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE TABLE telemetry_plain (LIKE telemetry INCLUDING DEFAULTS)")
    op.execute("INSERT INTO telemetry_plain SELECT * FROM telemetry")
    op.execute("ALTER SEQUENCE telemetry_id_seq OWNED BY telemetry_plain.id")
    op.execute("DROP TABLE telemetry")
    op.execute("ALTER TABLE telemetry_plain RENAME TO telemetry")
    op.execute("ALTER TABLE telemetry ADD CONSTRAINT telemetry_pkey PRIMARY KEY (id)")
    op.execute("ALTER TABLE telemetry ADD CONSTRAINT telemetry_event_id_key UNIQUE (event_id)")
    op.execute("CREATE INDEX ix_telemetry_drone_time ON telemetry (drone_id, event_time)")
    op.execute("CREATE INDEX ix_telemetry_flight_time ON telemetry (flight_id, event_time)")
