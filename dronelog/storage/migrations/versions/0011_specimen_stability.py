"""specimen stability: the last moment a specimen may reach the lab, from the stability
catalogue of its type

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 05:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('specimen_tracking') as batch:
        batch.add_column(sa.Column('stability_until', sa.DateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('specimen_tracking') as batch:
        batch.drop_column('stability_until')
