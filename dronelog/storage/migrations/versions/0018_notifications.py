"""notifications (issue 17): routes, one row per message, and the alert changes already
planned. Changes and request changes from before are marked done: the notifier starts with
what happens after it, not with the history.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 15:40:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table('alert_change') as batch:
        batch.add_column(sa.Column('notices_planned', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.create_index('ix_alert_change_notices_planned', ['notices_planned'])
    op.execute("UPDATE alert_change SET notices_planned = true")
    op.execute("UPDATE request_change SET notified_at = at WHERE notified_at IS NULL")
    op.create_table(
        'notification_route',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', _S(length=80), nullable=False),
        sa.Column('source', _S(length=16), nullable=False),
        sa.Column('channel', _S(length=64), nullable=False),
        sa.Column('recipients', sa.Text(), nullable=False),
        sa.Column('alert_kinds', sa.Text(), nullable=False),
        sa.Column('site_ids', sa.Text(), nullable=False),
        sa.Column('priorities', sa.Text(), nullable=False),
        sa.Column('min_severity', _S(length=16), nullable=True),
        sa.Column('after_min', sa.Integer(), nullable=False),
        sa.Column('quiet_start', _S(length=5), nullable=True),
        sa.Column('quiet_end', _S(length=5), nullable=True),
        sa.Column('language', _S(length=2), nullable=False),
        sa.Column('period', _S(length=8), nullable=True),
        sa.Column('send_at', _S(length=5), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', _S(length=80), nullable=False),
    )
    op.create_table(
        'notification',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('dedupe_key', _S(length=200), nullable=False, unique=True),
        sa.Column('route_id', sa.Integer(), nullable=False),
        sa.Column('source', _S(length=16), nullable=False),
        sa.Column('subject', _S(length=128), nullable=False),
        sa.Column('channel', _S(length=64), nullable=False),
        sa.Column('recipients', sa.Text(), nullable=False),
        sa.Column('language', _S(length=2), nullable=False),
        sa.Column('title', _S(length=300), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('attachment', sa.Text(), nullable=True),
        sa.Column('state', _S(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', _S(length=500), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('delivery', _S(length=32), nullable=True),
    )
    op.create_index('ix_notification_route_id', 'notification', ['route_id'])
    op.create_index('ix_notification_state_not_before', 'notification',
                    ['state', 'not_before'])
    op.create_index('ix_notification_channel_sent', 'notification', ['channel', 'sent_at'])


def downgrade() -> None:
    op.drop_table('notification')
    op.drop_table('notification_route')
    with op.batch_alter_table('alert_change') as batch:
        batch.drop_index('ix_alert_change_notices_planned')
        batch.drop_column('notices_planned')
