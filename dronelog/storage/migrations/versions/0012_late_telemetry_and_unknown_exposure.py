"""late telemetry and unknown exposure: an index for the tracker's reports received since
its watermark, and the seconds of a specimen's flights with no payload reading to tell

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 05:45:00

On PostgreSQL, telemetry is partitioned (migration 0007): an index created on the parent is
created on every partition, and on the ones made later.
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_telemetry_received_flight', 'telemetry', ['received_at', 'flight_id'])
    with op.batch_alter_table('specimen_tracking') as batch:
        batch.add_column(sa.Column('temp_unknown_s', sa.Float(), nullable=False,
                                   server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('specimen_tracking') as batch:
        batch.drop_column('temp_unknown_s')
    op.drop_index('ix_telemetry_received_flight', table_name='telemetry')
