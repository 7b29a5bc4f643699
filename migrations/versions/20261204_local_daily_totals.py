"""Daily totals per local day of ANALYTICS_TIMEZONE (kept only when it is not UTC).

Revision ID: 20261204_local_daily_totals
Revises: 20261203_funnel_speed
"""

import sqlalchemy as sa
from alembic import op

revision = "20261204_local_daily_totals"
down_revision = "20261203_funnel_speed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # MariaDB/MySQL commit DDL at once: after a failed run the table may already be there.
    if "analytics_local_daily_totals" in sa.inspect(op.get_bind()).get_table_names():
        op.drop_table("analytics_local_daily_totals")
    op.create_table(
        "analytics_local_daily_totals",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("revenue_minor_units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "event_type", "currency", name=op.f("pk_analytics_local_daily_totals")),
    )
    # Filled from the events when the rollups' zone is not UTC (nothing to do otherwise).
    from sqlalchemy.orm import Session

    from app.services import rollup_repo

    session = Session(bind=op.get_bind())
    rollup_repo.rebuild_local_days(session)
    session.flush()


def downgrade() -> None:
    op.drop_table("analytics_local_daily_totals")
