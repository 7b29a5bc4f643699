"""Add the monthly unique-user sketch cache

Revision ID: 20251124_add_monthly_sketches
Revises: 20251122_add_analytics_rollups
"""

import sqlalchemy as sa
from alembic import op


revision = "20251124_add_monthly_sketches"
down_revision = "20251122_add_analytics_rollups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_monthly_sketches",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("registers", sa.LargeBinary(length=16777216), nullable=False),
        sa.PrimaryKeyConstraint("month", "event_type", name=op.f("pk_analytics_monthly_sketches")),
    )


def downgrade() -> None:
    op.drop_table("analytics_monthly_sketches")
