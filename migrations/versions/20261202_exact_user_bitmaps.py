"""Replace the HyperLogLog sketch caches by exact Roaring bitmaps of user ids

Revision ID: 20261202_exact_user_bitmaps
Revises: 20251124_add_monthly_sketches
"""

import sqlalchemy as sa
from alembic import op

revision = "20261202_exact_user_bitmaps"
down_revision = "20251124_add_monthly_sketches"
branch_labels = None
depends_on = None

BLOB = sa.LargeBinary(length=2**24)


def _bitmap_table(name: str, period: str) -> None:
    op.create_table(
        name,
        sa.Column(period, sa.Date(), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("max_event_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("bitmap", BLOB, nullable=False),
        sa.PrimaryKeyConstraint(period, "event_type", name=op.f(f"pk_{name}")),
    )


def _sketch_table(name: str, period: str) -> None:
    op.create_table(
        name,
        sa.Column(period, sa.Date(), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("registers", BLOB, nullable=False),
        sa.PrimaryKeyConstraint(period, "event_type", name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    # The sketches were a cache: dropping them loses nothing the events do not hold.
    op.drop_table("analytics_daily_sketches")
    op.drop_table("analytics_monthly_sketches")
    _bitmap_table("analytics_daily_user_bitmaps", "day")
    _bitmap_table("analytics_monthly_user_bitmaps", "month")


def downgrade() -> None:
    op.drop_table("analytics_daily_user_bitmaps")
    op.drop_table("analytics_monthly_user_bitmaps")
    _sketch_table("analytics_daily_sketches", "day")
    _sketch_table("analytics_monthly_sketches", "month")
