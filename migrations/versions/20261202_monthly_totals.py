"""Add the monthly event totals (a year's report reads 12 month rows instead of 365 days)

Revision ID: 20261202_monthly_totals
Revises: 20261202_exact_user_bitmaps
"""

import datetime as dt
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "20261202_monthly_totals"
down_revision = "20261202_exact_user_bitmaps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    monthly = op.create_table(
        "analytics_monthly_totals",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("revenue_minor_units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("month", "event_type", "currency", name=op.f("pk_analytics_monthly_totals")),
    )
    # Filled from the daily totals, grouped by month in Python (month bucketing differs per database).
    daily = sa.table("analytics_daily_totals", sa.column("day", sa.Date()), sa.column("event_type", sa.String()),
                     sa.column("currency", sa.String()), sa.column("event_count", sa.BigInteger()),
                     sa.column("revenue_minor_units", sa.BigInteger()))
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for day, event_type, currency, count, revenue in op.get_bind().execute(sa.select(daily)):
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
        row = totals[(day.replace(day=1), event_type, currency)]
        row[0] += int(count)
        row[1] += int(revenue)
    if totals:
        op.bulk_insert(monthly, [
            {"month": m, "event_type": t, "currency": c, "event_count": n, "revenue_minor_units": r}
            for (m, t, c), (n, r) in sorted(totals.items())
        ])


def downgrade() -> None:
    op.drop_table("analytics_monthly_totals")
