"""Add the analytics_events table

Revision ID: 20251121_add_analytics_events
Revises: 20251120_create_shop_tables
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import app.db

revision = "20251121_add_analytics_events"
down_revision = '20251120_create_shop_tables'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('analytics_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_type', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('plan_id', sa.Integer(), nullable=True),
    sa.Column('amount_minor_units', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(mysql.JSON(), 'mysql'), nullable=False),
    sa.Column('occurred_at', app.db.UTCDateTime(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=80), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_analytics_events_order_id_orders')),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_analytics_events_plan_id_plans')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_analytics_events_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_events')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_analytics_events_dedupe_key'))
    )
    with op.batch_alter_table('analytics_events', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_events_occurred_at', ['occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_analytics_events_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_analytics_events_type_time_user', ['event_type', 'occurred_at', 'user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_analytics_events_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes (MySQL refuses to drop an FK's index first).
    op.drop_table('analytics_events')
