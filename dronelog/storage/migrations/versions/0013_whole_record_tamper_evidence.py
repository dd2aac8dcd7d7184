"""tamper evidence for the whole record: audit log chained, record seals, telemetry and
specimen triggers

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 06:00:00

- audit_log: `prev_hash` and `hash` (storage/record_chain.py); the entries already there are
  chained in id order; append-only by trigger.
- record_seal: chained digests (telemetry of ended flights, what retention thinned, the
  specimen rows described before their events were kept), append-only by trigger. Those
  legacy specimen rows are sealed here.
- retention_permit: telemetry refuses UPDATE always and DELETE unless the deleting
  transaction holds the permit, which only the retention job writes (storage/retention.py).
- specimen: an UPDATE must bring a new description event (storage/specimen_check.py); no
  DELETE.
On PostgreSQL, a row trigger on the partitioned telemetry table applies to every partition,
also those made later.
"""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

APPEND_ONLY = {"audit_log": "the audit log is append-only",
               "record_seal": "record seals are append-only"}
TELEMETRY_MESSAGE = "telemetry is changed only by the retention job"
SPECIMEN_MESSAGE = ("a specimen row changes only with a new description event "
                    "(storage/specimen_check.py)")


def upgrade() -> None:
    op.create_table('record_seal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('covered_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('sealed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('record_seal', schema=None) as batch_op:
        batch_op.create_index('ix_record_seal_kind_subject', ['kind', 'subject'], unique=False)
    op.create_table('retention_permit',
    sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('holder')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    _chain_audit_log()
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.alter_column('prev_hash', existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False)
        batch_op.alter_column('hash', existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False)
    _seal_legacy_specimens()
    _triggers()


def _chain_audit_log() -> None:
    from dronelog.storage import record_chain

    connection = op.get_bind()
    table = record_chain.AUDIT_LOG.table  # typed columns: times come back as datetimes
    previous = record_chain.GENESIS
    for row in connection.execute(sa.select(*[table.c[name] for name in (
            "id", *record_chain.AUDIT_LOG.fields)]).order_by(table.c.id)).all():
        current = record_chain.link_hash(record_chain.AUDIT_LOG, previous, row._mapping)
        connection.execute(sa.update(table).where(table.c.id == row.id).values(
            prev_hash=previous, hash=current))
        previous = current


def _seal_legacy_specimens() -> None:
    from dronelog.storage import record_chain, specimen_check

    connection = op.get_bind()
    count, digest = specimen_check.legacy_digest(connection)
    if count:
        record_chain.append(connection, record_chain.RECORD_SEALS, {
            "kind": specimen_check.LEGACY, "subject": "*", "rows": count, "digest": digest,
            "covered_until": None, "detail": json.dumps({"by": "migration 0013"}),
            "sealed_at": datetime.now(UTC)})


def _triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, message in APPEND_ONLY.items():
            for verb in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{message}'); END")
        op.execute("CREATE TRIGGER telemetry_no_update BEFORE UPDATE ON telemetry "
                   f"BEGIN SELECT RAISE(ABORT, '{TELEMETRY_MESSAGE}'); END")
        op.execute("CREATE TRIGGER telemetry_no_delete BEFORE DELETE ON telemetry "
                   "WHEN NOT EXISTS (SELECT 1 FROM retention_permit) "
                   f"BEGIN SELECT RAISE(ABORT, '{TELEMETRY_MESSAGE}'); END")
        op.execute("CREATE TRIGGER specimen_no_update BEFORE UPDATE ON specimen "
                   "WHEN NEW.description_event_id IS OLD.description_event_id "
                   "OR NEW.description_event_id IS NULL OR NEW.barcode IS NOT OLD.barcode "
                   "OR NEW.first_event_id IS NOT OLD.first_event_id "
                   "OR NEW.first_seen_at IS NOT OLD.first_seen_at "
                   f"BEGIN SELECT RAISE(ABORT, '{SPECIMEN_MESSAGE}'); END")
        op.execute("CREATE TRIGGER specimen_no_delete BEFORE DELETE ON specimen "
                   f"BEGIN SELECT RAISE(ABORT, '{SPECIMEN_MESSAGE}'); END")
        return
    for table, message in APPEND_ONLY.items():
        op.execute(f"CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$ BEGIN "
                   f"RAISE EXCEPTION '{message}'; END $$ LANGUAGE plpgsql")
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()")
    op.execute(
        "CREATE FUNCTION telemetry_retention_only() RETURNS trigger AS $$ BEGIN "
        "IF TG_OP = 'UPDATE' OR NOT EXISTS (SELECT 1 FROM retention_permit) THEN "
        f"RAISE EXCEPTION '{TELEMETRY_MESSAGE}'; END IF; RETURN OLD; END $$ LANGUAGE plpgsql")
    op.execute("CREATE TRIGGER telemetry_retention_only BEFORE UPDATE OR DELETE ON telemetry "
               "FOR EACH ROW EXECUTE FUNCTION telemetry_retention_only()")
    op.execute(
        "CREATE FUNCTION specimen_described_only() RETURNS trigger AS $$ BEGIN "
        "IF TG_OP = 'DELETE' OR NEW.description_event_id IS NULL "
        "OR NEW.description_event_id IS NOT DISTINCT FROM OLD.description_event_id "
        "OR NEW.barcode IS DISTINCT FROM OLD.barcode "
        "OR NEW.first_event_id IS DISTINCT FROM OLD.first_event_id "
        "OR NEW.first_seen_at IS DISTINCT FROM OLD.first_seen_at THEN "
        f"RAISE EXCEPTION '{SPECIMEN_MESSAGE}'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
    op.execute("CREATE TRIGGER specimen_described_only BEFORE UPDATE OR DELETE ON specimen "
               "FOR EACH ROW EXECUTE FUNCTION specimen_described_only()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_no_update")
            op.execute(f"DROP TRIGGER {table}_no_delete")
        for name in ("telemetry_no_update", "telemetry_no_delete", "specimen_no_update",
                     "specimen_no_delete"):
            op.execute(f"DROP TRIGGER {name}")
    else:
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP FUNCTION {table}_append_only()")
        op.execute("DROP TRIGGER telemetry_retention_only ON telemetry")
        op.execute("DROP FUNCTION telemetry_retention_only()")
        op.execute("DROP TRIGGER specimen_described_only ON specimen")
        op.execute("DROP FUNCTION specimen_described_only()")
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
    op.drop_table('retention_permit')
    with op.batch_alter_table('record_seal', schema=None) as batch_op:
        batch_op.drop_index('ix_record_seal_kind_subject')
    op.drop_table('record_seal')
