"""Queue of entrants the funnel tables do not reflect yet (upkeep moves out of the request)

Revision ID: 20261203_funnel_speed
Revises: 20261202_add_finance

The derived tables keep their shape and rows: until this revision `record_event` kept
them current in the business transaction, so the queue starts empty and nothing needs
rebuilding.
"""

import sqlalchemy as sa
from alembic import op

revision = "20261203_funnel_speed"
down_revision = "20261202_add_finance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_funnel_pending",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_funnel_pending")),
    )


def downgrade() -> None:
    # The queued entrants are applied first, so the synchronous upkeep of the older
    # revision finds its tables current.
    from sqlalchemy.orm import Session

    from app.services.funnel_store import catch_up

    session = Session(bind=op.get_bind())
    while catch_up(session):
        pass
    session.flush()
    op.drop_table("analytics_funnel_pending")
