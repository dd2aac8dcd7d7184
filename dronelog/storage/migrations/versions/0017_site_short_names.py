"""site short names: what a narrow label shows (the report's routes, the map), in Chinese and
English; the full name stays the tooltip. Null: the dashboards shorten the full name.

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-05 13:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0017'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('site') as batch:
        batch.add_column(sa.Column('short_zh', sqlmodel.sql.sqltypes.AutoString(length=40),
                                   nullable=True))
        batch.add_column(sa.Column('short_en', sqlmodel.sql.sqltypes.AutoString(length=40),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('site') as batch:
        batch.drop_column('short_en')
        batch.drop_column('short_zh')
