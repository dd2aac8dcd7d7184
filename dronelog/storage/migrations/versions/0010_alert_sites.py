"""alert sites: a specimen alert also reaches its origin's lab and, when misrouted, the lab
of the site where the specimen is

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 09:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alert') as batch:
        batch.add_column(sa.Column('origin_site_id',
                                   sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch.add_column(sa.Column('at_site_id',
                                   sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alert') as batch:
        batch.drop_column('at_site_id')
        batch.drop_column('origin_site_id')
