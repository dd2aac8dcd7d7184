"""turnaround engine

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 00:11:54.741897
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('subject_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('drone_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('resolution_note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.create_index('ix_alert_active', ['subject_kind', 'subject_id', 'kind'], unique=True, sqlite_where=sa.text("state != 'resolved'"), postgresql_where=sa.text("state != 'resolved'"))
        batch_op.create_index('ix_alert_state_opened', ['state', 'opened_at'], unique=False)

    op.create_table('alert_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('change', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('webhook_delivered', sa.Boolean(), nullable=False),
    sa.Column('webhook_attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_change_alert_id'), ['alert_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_change_published'), ['published'], unique=False)

    op.create_table('flight_tracking',
    sa.Column('flight_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('drone_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('origin_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('destination_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('took_off_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('landed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('landed_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('diverted', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('flight_id')
    )
    with op.batch_alter_table('flight_tracking', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flight_tracking_state'), ['state'], unique=False)

    op.create_table('job_lease',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('job_state',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('route',
    sa.Column('origin_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('destination_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('cruise_alt_m', sa.Float(), nullable=False),
    sa.Column('waypoints', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('origin_site_id', 'destination_site_id')
    )
    op.create_table('specimen_tracking',
    sa.Column('barcode', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('is_open', sa.Boolean(), nullable=False),
    sa.Column('priority', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('origin_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('destination_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
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
    sa.Column('temp_min_c', sa.Float(), nullable=True),
    sa.Column('temp_max_c', sa.Float(), nullable=True),
    sa.Column('temp_out_of_range_s', sa.Float(), nullable=False),
    sa.Column('excursion', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('barcode')
    )
    with op.batch_alter_table('specimen_tracking', schema=None) as batch_op:
        batch_op.create_index('ix_specimen_tracking_flight', ['flight_id'], unique=False)
        batch_op.create_index('ix_specimen_tracking_open_deadline', ['is_open', 'deadline'], unique=False)

    op.create_table('turnaround_report',
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('origin_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('destination_site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('priority', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('specimens', sa.Integer(), nullable=False),
    sa.Column('received', sa.Integer(), nullable=False),
    sa.Column('on_time', sa.Integer(), nullable=False),
    sa.Column('on_time_pct', sa.Float(), nullable=True),
    sa.Column('p50_min', sa.Float(), nullable=True),
    sa.Column('p90_min', sa.Float(), nullable=True),
    sa.Column('p50_collected_to_loaded_min', sa.Float(), nullable=True),
    sa.Column('p90_collected_to_loaded_min', sa.Float(), nullable=True),
    sa.Column('p50_flight_min', sa.Float(), nullable=True),
    sa.Column('p90_flight_min', sa.Float(), nullable=True),
    sa.Column('p50_landed_to_received_min', sa.Float(), nullable=True),
    sa.Column('p90_landed_to_received_min', sa.Float(), nullable=True),
    sa.Column('excursions', sa.Integer(), nullable=False),
    sa.Column('rejections', sa.Integer(), nullable=False),
    sa.Column('flights', sa.Integer(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day', 'origin_site_id', 'destination_site_id', 'priority', 'kind')
    )
    with op.batch_alter_table('custody_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stored_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_custody_event_stored_at'), ['stored_at'], unique=False)

    with op.batch_alter_table('flight_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stored_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_flight_event_stored_at'), ['stored_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('flight_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flight_event_stored_at'))
        batch_op.drop_column('stored_at')

    with op.batch_alter_table('custody_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_custody_event_stored_at'))
        batch_op.drop_column('stored_at')

    op.drop_table('turnaround_report')
    with op.batch_alter_table('specimen_tracking', schema=None) as batch_op:
        batch_op.drop_index('ix_specimen_tracking_open_deadline')
        batch_op.drop_index('ix_specimen_tracking_flight')

    op.drop_table('specimen_tracking')
    op.drop_table('route')
    op.drop_table('job_state')
    op.drop_table('job_lease')
    with op.batch_alter_table('flight_tracking', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flight_tracking_state'))

    op.drop_table('flight_tracking')
    with op.batch_alter_table('alert_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_change_published'))
        batch_op.drop_index(batch_op.f('ix_alert_change_alert_id'))

    op.drop_table('alert_change')
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_state_opened')
        batch_op.drop_index('ix_alert_active', sqlite_where=sa.text("state != 'resolved'"), postgresql_where=sa.text("state != 'resolved'"))

    op.drop_table('alert')
