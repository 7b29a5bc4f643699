"""Finance: ECB exchange rates, refunds, orders' refunded amount, webhook deliveries per order

Revision ID: 20261202_add_finance
Revises: 20261202_add_funnel_tables
"""

import sqlalchemy as sa
from alembic import op

import app.db


revision = "20261202_add_finance"
down_revision = "20261202_add_funnel_tables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fx_rates",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("rate_per_eur", sa.Numeric(18, 6), nullable=False),
        sa.PrimaryKeyConstraint("day", "currency", name=op.f("pk_fx_rates")),
    )
    op.create_index("ix_fx_rates_currency_day", "fx_rates", ["currency", "day"])
    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("provider_refund_id", sa.String(length=255), nullable=False),
        sa.Column("amount_minor_units", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("refunded_at", app.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_refunds_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("provider_refund_id", name=op.f("uq_refunds_provider_refund_id")),
    )
    op.create_index(op.f("ix_refunds_order_id"), "refunds", ["order_id"])
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("refunded_minor_units", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("payment_webhook_events") as batch:
        batch.add_column(sa.Column("order_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_payment_webhook_events_order_id_orders"), "orders", ["order_id"], ["id"])
        batch.create_index(op.f("ix_payment_webhook_events_order_id"), ["order_id"])


def downgrade() -> None:
    with op.batch_alter_table("payment_webhook_events") as batch:
        # The foreign key first: MySQL keeps the index while a constraint needs it.
        batch.drop_constraint(op.f("fk_payment_webhook_events_order_id_orders"), type_="foreignkey")
        batch.drop_index(op.f("ix_payment_webhook_events_order_id"))
        batch.drop_column("order_id")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("refunded_minor_units")
    op.drop_table("refunds")  # with its index (MySQL will not drop an index its foreign key needs)
    op.drop_index("ix_fx_rates_currency_day", table_name="fx_rates")
    op.drop_table("fx_rates")
