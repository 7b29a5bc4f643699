"""A version token per month of the funnel rollups, so readers can keep closed months' sums.

Revision ID: 20261209_funnel_month_versions
Revises: 20261208_funnel_value_windows
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "20261209_funnel_month_versions"
down_revision = "20261208_funnel_value_windows"
branch_labels = None
depends_on = None

NAME = "analytics_funnel_month_versions"


def upgrade() -> None:
    bind = op.get_bind()
    if NAME in set(sa.inspect(bind).get_table_names()):
        op.drop_table(NAME)  # MariaDB/MySQL commit DDL at once: after a failed run the table may be there
    op.create_table(
        NAME,
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("month", name=op.f(f"pk_{NAME}")),
    )
    # Every month the rollups hold gets a token: a month without one is never kept by a reader.
    rollup = sa.table("analytics_funnel_value_windows", sa.column("period"), sa.column("utc_day", sa.Date()), sa.column("local_day", sa.Date()))
    months = set()
    for column in (rollup.c.utc_day, rollup.c.local_day):
        months.update(bind.execute(sa.select(column).where(rollup.c.period == "m").distinct()).scalars())
    if months:
        target = sa.table(NAME, sa.column("month", sa.Date()), sa.column("version"))
        bind.execute(target.insert(), [{"month": month, "version": 1 + secrets.randbits(32)} for month in sorted(months)])


def downgrade() -> None:
    op.drop_table(NAME)
