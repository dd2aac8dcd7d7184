"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 23:48:29.753323
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('container',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('custody_event',
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('barcode', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('actor_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('actor_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('event_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('container_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('seal_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('flight_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('drone_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.PrimaryKeyConstraint('event_id')
    )
    with op.batch_alter_table('custody_event', schema=None) as batch_op:
        batch_op.create_index('ix_custody_event_barcode_time', ['barcode', 'event_time'], unique=False)
        batch_op.create_index('ix_custody_event_container_time', ['container_id', 'event_time'], unique=False)
        batch_op.create_index('ix_custody_event_flight', ['flight_id'], unique=False)

    op.create_table('dead_letter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('reason_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest')
    )
    with op.batch_alter_table('dead_letter', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dead_letter_reason_code'), ['reason_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_dead_letter_received_at'), ['received_at'], unique=False)

    op.create_table('drone',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=True),
    sa.Column('status_event_time', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('drone_status_event',
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('drone_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('event_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    with op.batch_alter_table('drone_status_event', schema=None) as batch_op:
        batch_op.create_index('ix_drone_status_event_drone_time', ['drone_id', 'event_time'], unique=False)

    op.create_table('flight',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('drone_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('origin_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('destination_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('planned_departure', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('flight', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flight_drone_id'), ['drone_id'], unique=False)

    op.create_table('flight_event',
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('flight_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('drone_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('event_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('origin_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('destination_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('new_destination_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('planned_departure', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.PrimaryKeyConstraint('event_id')
    )
    with op.batch_alter_table('flight_event', schema=None) as batch_op:
        batch_op.create_index('ix_flight_event_flight_time', ['flight_id', 'event_time'], unique=False)

    op.create_table('site',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name_zh', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('name_en', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('specimen',
    sa.Column('barcode', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('blood_product', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('priority', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('temperature_class', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('origin_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('destination_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('order_ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('first_event_id', sa.Uuid(), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('barcode')
    )
    with op.batch_alter_table('specimen', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_specimen_destination_site_id'), ['destination_site_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_specimen_origin_site_id'), ['origin_site_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_specimen_priority'), ['priority'], unique=False)

    op.create_table('telemetry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('drone_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('flight_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('event_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('alt_m', sa.Float(), nullable=False),
    sa.Column('height_m', sa.Float(), nullable=True),
    sa.Column('ground_speed_mps', sa.Float(), nullable=False),
    sa.Column('heading_deg', sa.Float(), nullable=False),
    sa.Column('battery_pct', sa.Float(), nullable=False),
    sa.Column('payload_temp_c', sa.Float(), nullable=True),
    sa.Column('link_quality_pct', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('telemetry', schema=None) as batch_op:
        batch_op.create_index('ix_telemetry_drone_time', ['drone_id', 'event_time'], unique=False)
        batch_op.create_index('ix_telemetry_flight_time', ['flight_id', 'event_time'], unique=False)

    _make_custody_append_only()


_APPEND_ONLY_MESSAGE = "custody events are append-only: record a correction as a new event"


def _make_custody_append_only() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER custody_event_no_{verb.lower()} BEFORE {verb} ON custody_event "
                f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY_MESSAGE}'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION custody_event_append_only() RETURNS trigger AS $$ BEGIN "
            f"RAISE EXCEPTION '{_APPEND_ONLY_MESSAGE}'; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER custody_event_append_only BEFORE UPDATE OR DELETE ON custody_event "
            "FOR EACH ROW EXECUTE FUNCTION custody_event_append_only()"
        )


def _drop_custody_append_only() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER custody_event_no_update")
        op.execute("DROP TRIGGER custody_event_no_delete")
    else:
        op.execute("DROP TRIGGER custody_event_append_only ON custody_event")
        op.execute("DROP FUNCTION custody_event_append_only()")



def downgrade() -> None:
    _drop_custody_append_only()
    with op.batch_alter_table('telemetry', schema=None) as batch_op:
        batch_op.drop_index('ix_telemetry_flight_time')
        batch_op.drop_index('ix_telemetry_drone_time')

    op.drop_table('telemetry')
    with op.batch_alter_table('specimen', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_specimen_priority'))
        batch_op.drop_index(batch_op.f('ix_specimen_origin_site_id'))
        batch_op.drop_index(batch_op.f('ix_specimen_destination_site_id'))

    op.drop_table('specimen')
    op.drop_table('site')
    with op.batch_alter_table('flight_event', schema=None) as batch_op:
        batch_op.drop_index('ix_flight_event_flight_time')

    op.drop_table('flight_event')
    with op.batch_alter_table('flight', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flight_drone_id'))

    op.drop_table('flight')
    with op.batch_alter_table('drone_status_event', schema=None) as batch_op:
        batch_op.drop_index('ix_drone_status_event_drone_time')

    op.drop_table('drone_status_event')
    op.drop_table('drone')
    with op.batch_alter_table('dead_letter', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dead_letter_received_at'))
        batch_op.drop_index(batch_op.f('ix_dead_letter_reason_code'))

    op.drop_table('dead_letter')
    with op.batch_alter_table('custody_event', schema=None) as batch_op:
        batch_op.drop_index('ix_custody_event_flight')
        batch_op.drop_index('ix_custody_event_container_time')
        batch_op.drop_index('ix_custody_event_barcode_time')

    op.drop_table('custody_event')
    op.drop_table('container')
