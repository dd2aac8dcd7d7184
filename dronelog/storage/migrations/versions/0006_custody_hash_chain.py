"""custody hash chain

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 03:00:00

Creates `custody_link` and chains the custody events already stored (per specimen, in
event-time order), so that `dronelog audit verify` holds from the upgrade on.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('custody_link',
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('barcode', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    with op.batch_alter_table('custody_link', schema=None) as batch_op:
        batch_op.create_index('ix_custody_link_barcode_seq', ['barcode', 'seq'], unique=True)
    _chain_existing_events()
    _append_only()


def _chain_existing_events() -> None:
    from dronelog.storage import custody_chain

    connection = op.get_bind()
    event = custody_chain.EVENT  # typed columns: times come back as datetimes on SQLite too
    rows = [dict(row._mapping) for row in connection.execute(
        sa.select(*[event.c[name] for name in custody_chain.CHAINED_FIELDS])
        .order_by(event.c.barcode))]
    for start in range(0, len(rows), 5000):
        custody_chain.append(connection, rows[start:start + 5000])


def _append_only() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER custody_link_no_{verb.lower()} BEFORE {verb} ON custody_link "
                "BEGIN SELECT RAISE(ABORT, 'custody links are append-only'); END")
    else:
        op.execute(
            "CREATE FUNCTION custody_link_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'custody links are append-only'; END $$ LANGUAGE plpgsql")
        op.execute(
            "CREATE TRIGGER custody_link_append_only BEFORE UPDATE OR DELETE ON custody_link "
            "FOR EACH ROW EXECUTE FUNCTION custody_link_append_only()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER custody_link_no_update")
        op.execute("DROP TRIGGER custody_link_no_delete")
    else:
        op.execute("DROP TRIGGER custody_link_append_only ON custody_link")
        op.execute("DROP FUNCTION custody_link_append_only()")
    with op.batch_alter_table('custody_link', schema=None) as batch_op:
        batch_op.drop_index('ix_custody_link_barcode_seq')

    op.drop_table('custody_link')
