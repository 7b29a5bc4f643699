"""Add the daily analytics rollups and the unique-user sketch cache

Revision ID: 20251122_add_analytics_rollups
Revises: 20251121_add_analytics_events
"""

import sqlalchemy as sa
from alembic import op


revision = "20251122_add_analytics_rollups"
down_revision = '20251121_add_analytics_events'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('analytics_daily_plans',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('payments', sa.BigInteger(), nullable=False),
    sa.Column('revenue_minor_units', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'plan_id', 'currency', name=op.f('pk_analytics_daily_plans'))
    )
    op.create_table('analytics_daily_sketches',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('event_type', sa.String(length=32), nullable=False),
    sa.Column('event_count', sa.BigInteger(), nullable=False),
    sa.Column('registers', sa.LargeBinary(length=16777216), nullable=False),
    sa.PrimaryKeyConstraint('day', 'event_type', name=op.f('pk_analytics_daily_sketches'))
    )
    op.create_table('analytics_daily_totals',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('event_type', sa.String(length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('event_count', sa.BigInteger(), nullable=False),
    sa.Column('revenue_minor_units', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'event_type', 'currency', name=op.f('pk_analytics_daily_totals'))
    )
    op.create_table('analytics_monthly_plans',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('payments', sa.BigInteger(), nullable=False),
    sa.Column('revenue_minor_units', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('month', 'plan_id', 'currency', name=op.f('pk_analytics_monthly_plans'))
    )


def downgrade() -> None:
    # Dropping a table drops its indexes (MySQL refuses to drop an FK's index first).
    op.drop_table('analytics_monthly_plans')
    op.drop_table('analytics_daily_totals')
    op.drop_table('analytics_daily_sketches')
    op.drop_table('analytics_daily_plans')
