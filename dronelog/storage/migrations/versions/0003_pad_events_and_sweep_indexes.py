"""pad events and sweep indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 00:37:27.688988
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pad_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('flight_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('drone_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('site_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pad_event', schema=None) as batch_op:
        batch_op.create_index('ix_pad_event_once', ['flight_id', 'site_id', 'kind', 'at'], unique=True)
        batch_op.create_index('ix_pad_event_site_at', ['site_id', 'at'], unique=False)

    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pad_radius_m', sa.Float(), nullable=False,
                                      server_default='25'))

    with op.batch_alter_table('specimen_tracking', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_specimen_tracking_flight'))
        batch_op.drop_index(batch_op.f('ix_specimen_tracking_open_deadline'))
        batch_op.create_index('ix_specimen_tracking_flight_state', ['flight_id', 'state'], unique=False)
        batch_op.create_index('ix_specimen_tracking_open_warning', ['warning_at'], unique=False, sqlite_where=sa.text('is_open'), postgresql_where=sa.text('is_open'))
        batch_op.create_index('ix_specimen_tracking_updated', ['updated_at'], unique=False)

def downgrade() -> None:
    with op.batch_alter_table('specimen_tracking', schema=None) as batch_op:
        batch_op.drop_index('ix_specimen_tracking_updated')
        batch_op.drop_index('ix_specimen_tracking_open_warning', sqlite_where=sa.text('is_open'), postgresql_where=sa.text('is_open'))
        batch_op.drop_index('ix_specimen_tracking_flight_state')
        batch_op.create_index(batch_op.f('ix_specimen_tracking_open_deadline'), ['is_open', 'deadline'], unique=False)
        batch_op.create_index(batch_op.f('ix_specimen_tracking_flight'), ['flight_id'], unique=False)

    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.drop_column('pad_radius_m')

    with op.batch_alter_table('pad_event', schema=None) as batch_op:
        batch_op.drop_index('ix_pad_event_site_at')
        batch_op.drop_index('ix_pad_event_once')

    op.drop_table('pad_event')
