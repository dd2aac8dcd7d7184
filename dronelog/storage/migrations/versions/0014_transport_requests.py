"""transport requests: the requests and their change log, the drones' real-name registration
numbers

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 13:00:00

- transport_request: a site's request to carry its sealed boxes, where it stands now
  (domain/requests.py);
- request_change: every state change, attributed (the request's history, and what the
  notifications route);
- drone.registration_number: the aircraft's real-name registration number (实名登记号).
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_ID = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table('transport_request',
    sa.Column('id', _ID(length=64), nullable=False),
    sa.Column('origin_site_id', _ID(length=64), nullable=False),
    sa.Column('destination_site_id', _ID(length=64), nullable=False),
    sa.Column('priority', _ID(length=16), nullable=False),
    sa.Column('state', _ID(length=16), nullable=False),
    sa.Column('source', _ID(length=16), nullable=False),
    sa.Column('schedule_key', _ID(length=64), nullable=True),
    sa.Column('containers', sa.Text(), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ready_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('requested_by', _ID(length=80), nullable=False),
    sa.Column('carrier', _ID(length=16), nullable=True),
    sa.Column('drone_id', _ID(length=64), nullable=True),
    sa.Column('drone_registration', _ID(length=64), nullable=True),
    sa.Column('flight_id', _ID(length=64), nullable=True),
    sa.Column('planned_departure', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approval_ref', _ID(length=64), nullable=True),
    sa.Column('flight_held', sa.Boolean(), nullable=False),
    sa.Column('courier_id', _ID(length=64), nullable=True),
    sa.Column('picked_up_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('schedule_key')
    )
    with op.batch_alter_table('transport_request', schema=None) as batch_op:
        batch_op.create_index('ix_transport_request_state_ready', ['state', 'ready_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_transport_request_flight_id'), ['flight_id'],
                              unique=False)
    op.create_table('request_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', _ID(length=64), nullable=False),
    sa.Column('action', _ID(length=16), nullable=False),
    sa.Column('from_state', _ID(length=16), nullable=True),
    sa.Column('to_state', _ID(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('by', _ID(length=80), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('request_change', schema=None) as batch_op:
        batch_op.create_index('ix_request_change_request', ['request_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_change_at'), ['at'], unique=False)
    with op.batch_alter_table('drone', schema=None) as batch_op:
        batch_op.add_column(sa.Column('registration_number', _ID(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('drone', schema=None) as batch_op:
        batch_op.drop_column('registration_number')
    op.drop_table('request_change')
    op.drop_table('transport_request')
