"""alerts resolved lately: an index on (state, resolved_at), so that the grouped alerts read
the resolved ones of a bounded window, not every alert ever resolved

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 22:30:00
"""

from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_alert_state_resolved', 'alert', ['state', 'resolved_at'])


def downgrade() -> None:
    op.drop_index('ix_alert_state_resolved', table_name='alert')
