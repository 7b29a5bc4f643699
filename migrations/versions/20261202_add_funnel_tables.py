"""Add the ordered-funnel and retention tables and users.verified_at

Revision ID: 20261202_add_funnel_tables
Revises: 20261202_monthly_totals
"""

import sqlalchemy as sa
from alembic import op

revision = "20261202_add_funnel_tables"
down_revision = "20261202_monthly_totals"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime().with_variant(sa.dialects.mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("verified_at", UTC_DATETIME, nullable=True))
    op.create_table(
        "analytics_funnel_steps",
        sa.Column("kind", sa.String(5), nullable=False),
        sa.Column("entrant_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chain", sa.String(8), nullable=False),
        sa.Column("step", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("entry_at", UTC_DATETIME, nullable=False),
        sa.Column("reached_at", UTC_DATETIME, nullable=False),
        sa.Column("gap_us", sa.BigInteger(), nullable=False),
        sa.Column("delay_days", sa.SmallInteger(), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("attr_delay", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "entrant_id", "chain", "step", name=op.f("pk_analytics_funnel_steps")),
    )
    op.create_index(
        "ix_analytics_funnel_steps_range", "analytics_funnel_steps", ["kind", "chain", "entry_at", "step", "delay_days", "entrant_id"]
    )
    op.create_index(
        "ix_analytics_funnel_steps_bucket", "analytics_funnel_steps",
        ["kind", "chain", "step", "bucket", "entry_at", "delay_days", "gap_us"],
    )
    op.create_index(op.f("ix_analytics_funnel_steps_user_id"), "analytics_funnel_steps", ["user_id"])
    def day_key():
        return [
        sa.Column("kind", sa.String(5), nullable=False),
        sa.Column("chain", sa.String(8), nullable=False),
        sa.Column("period", sa.String(1), nullable=False),
        sa.Column("utc_day", sa.Date(), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("step", sa.SmallInteger(), autoincrement=False, nullable=False),
        ]
    op.create_table(
        "analytics_funnel_rollup",
        *day_key(),
        sa.Column("delay_days", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("entrants", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "kind", "chain", "period", "utc_day", "local_day", "step", "delay_days", name=op.f("pk_analytics_funnel_rollup")
        ),
    )
    op.create_index(
        "ix_analytics_funnel_rollup_local", "analytics_funnel_rollup",
        ["kind", "chain", "period", "local_day", "step", "delay_days", "entrants"],
    )
    op.create_table(
        "analytics_funnel_gaps",
        *day_key(),
        sa.Column("delay_days", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("bucket", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("entrants", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "kind", "chain", "period", "utc_day", "local_day", "step", "delay_days", "bucket",
            name=op.f("pk_analytics_funnel_gaps"),
        ),
    )
    op.create_index(
        "ix_analytics_funnel_gaps_local", "analytics_funnel_gaps",
        ["kind", "chain", "period", "local_day", "step", "delay_days", "bucket", "entrants"],
    )
    op.create_table(
        "analytics_user_paid_periods",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("interval", sa.String(5), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "interval", "period_start", name=op.f("pk_analytics_user_paid_periods")),
    )
    op.create_table(
        "analytics_retention",
        sa.Column("interval", sa.String(5), nullable=False),
        sa.Column("cohort_start", sa.Date(), nullable=False),
        sa.Column("period_offset", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("users", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("interval", "cohort_start", "period_offset", name=op.f("pk_analytics_retention")),
    )
    op.create_table(
        "analytics_rollup_meta",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_analytics_rollup_meta")),
    )


def downgrade() -> None:
    for table in (
        "analytics_rollup_meta",
        "analytics_retention",
        "analytics_user_paid_periods",
        "analytics_funnel_gaps",
        "analytics_funnel_rollup",
    ):
        op.drop_table(table)
    op.drop_index(op.f("ix_analytics_funnel_steps_user_id"), table_name="analytics_funnel_steps")
    op.drop_index("ix_analytics_funnel_steps_bucket", table_name="analytics_funnel_steps")
    op.drop_index("ix_analytics_funnel_steps_range", table_name="analytics_funnel_steps")
    op.drop_table("analytics_funnel_steps")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("verified_at")
