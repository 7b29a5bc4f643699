"""Funnel speed: a queue of entrants for the background upkeep, and finer gap buckets

Revision ID: 20261203_funnel_speed
Revises: 20261202_add_finance

`analytics_funnel_pending` queues the users and orders whose events the funnel tables
do not reflect yet. The gap buckets go from one per doubling to eight, so the funnel
tables are rebuilt from analytics_events (the data is carried; the queue starts empty).
"""

import sqlalchemy as sa
from alembic import op

revision = "20261203_funnel_speed"
down_revision = "20261202_add_finance"
branch_labels = None
depends_on = None

SUB_BUCKETS = 8  # funnel_spec.SUB_BUCKETS when this revision was written
COARSE_BUCKETS = 24


def upgrade() -> None:
    op.create_table(
        "analytics_funnel_pending",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_funnel_pending")),
    )
    from sqlalchemy.orm import Session

    from app.services.funnel_rebuild import rebuild_funnel  # imported here: the app is only needed to migrate

    session = Session(bind=op.get_bind())
    rebuild_funnel(session, with_windows=False)  # the window rollups come in a later revision
    session.flush()


def downgrade() -> None:
    """Back to one bucket per doubling: fine bucket k lies inside coarse bucket ceil(k / 8)."""
    from sqlalchemy.orm import Session

    from app.services.funnel_store import catch_up

    session = Session(bind=op.get_bind())
    while catch_up(session):  # the older revision keeps the tables current in the request
        pass
    session.flush()
    coarse = sa.case(
        *[(sa.column("bucket") <= SUB_BUCKETS * j, j) for j in range(COARSE_BUCKETS)], else_=COARSE_BUCKETS
    )
    steps = sa.table("analytics_funnel_steps", sa.column("bucket"))
    op.execute(steps.update().values(bucket=coarse))
    key = ["kind", "chain", "period", "utc_day", "local_day", "step", "delay_days"]
    gaps = sa.table("analytics_funnel_gaps", *(sa.column(c) for c in key), sa.column("bucket"), sa.column("entrants"))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(*(gaps.c[c] for c in key), coarse.label("bucket"), sa.func.sum(gaps.c.entrants).label("entrants"))
        .group_by(*(gaps.c[c] for c in key), coarse)
    ).mappings().all()
    bind.execute(gaps.delete())
    for start in range(0, len(rows), 10_000):
        bind.execute(gaps.insert(), [dict(r) for r in rows[start:start + 10_000]])
    op.drop_table("analytics_funnel_pending")
