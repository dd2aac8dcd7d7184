"""custody rules: attribution, descriptions kept per event, presence by received time

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 18:40:00

- custody_event: `recorded_by` (the authenticated sender) and `description` (the specimen
  description sent with the event, kept as evidence). Added in place: the append-only
  triggers stay.
- specimen: where the believed description came from, and its event. Rows already there
  were first descriptions; they count as `collection`, so only the origin's own collection
  outranks them.
- drone: `status_received_at`, the order in which the broker delivered status reports (a
  last will carries its connect time as event_time).
- specimen_tracking is a projection: it is dropped and made again with the new columns
  (misrouted and unknown states, anomalies, description source and conflicts, seals, an
  unknown destination) and the tracker's watermark is cleared, so the next run rebuilds it
  from the events.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _tracking_columns(destination_nullable: bool, new: bool) -> list:
    columns = [
        sa.Column('barcode', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('is_open', sa.Boolean(), nullable=False),
        sa.Column('priority', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('origin_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('destination_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=destination_nullable),
        sa.Column('temperature_class', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('collected_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
        sa.Column('warning_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('landed_to_received_min', sa.Float(), nullable=True),
        sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('took_off_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('landed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('rejected_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('rejection_reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('flight_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('drone_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('container_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('custody_gaps', sa.Text(), nullable=False),
    ]
    if new:
        columns += [
            sa.Column('anomalies', sa.Text(), nullable=False),
            sa.Column('description_source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
            sa.Column('description_conflicts', sa.Text(), nullable=False),
            sa.Column('seal_packed', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
            sa.Column('seal_found', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        ]
    columns += [
        sa.Column('temp_min_c', sa.Float(), nullable=True),
        sa.Column('temp_max_c', sa.Float(), nullable=True),
        sa.Column('temp_out_of_range_s', sa.Float(), nullable=False),
        sa.Column('excursion', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('barcode'),
    ]
    return columns


def _remake_tracking(new: bool) -> None:
    op.drop_table('specimen_tracking')
    op.create_table('specimen_tracking', *_tracking_columns(new, new))
    with op.batch_alter_table('specimen_tracking', schema=None) as batch_op:
        batch_op.create_index('ix_specimen_tracking_flight_state', ['flight_id', 'state'], unique=False)
        batch_op.create_index('ix_specimen_tracking_open_warning', ['warning_at'], unique=False, sqlite_where=sa.text('is_open'), postgresql_where=sa.text('is_open'))
        batch_op.create_index('ix_specimen_tracking_updated', ['updated_at'], unique=False)
    op.execute("DELETE FROM job_state WHERE name = 'tracker.watermark'")


def upgrade() -> None:
    op.add_column('custody_event', sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))
    op.add_column('custody_event', sa.Column('description', sa.Text(), nullable=True))
    op.add_column('specimen', sa.Column('description_source', sqlmodel.sql.sqltypes.AutoString(length=20), server_default='collection', nullable=False))
    op.add_column('specimen', sa.Column('description_event_id', sa.Uuid(), nullable=True))
    op.add_column('drone', sa.Column('status_received_at', sa.DateTime(timezone=True), nullable=True))
    _remake_tracking(new=True)


def downgrade() -> None:
    _remake_tracking(new=False)
    with op.batch_alter_table('drone', schema=None) as batch_op:
        batch_op.drop_column('status_received_at')
    with op.batch_alter_table('specimen', schema=None) as batch_op:
        batch_op.drop_column('description_event_id')
        batch_op.drop_column('description_source')
    op.drop_column('custody_event', 'description')
    op.drop_column('custody_event', 'recorded_by')
