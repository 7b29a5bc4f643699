"""Funnel rollups without the delay: entrants within each window the dashboard offers.

Revision ID: 20261205_funnel_windows
Revises: 20261204_local_daily_totals
"""

import sqlalchemy as sa
from alembic import op

revision = "20261205_funnel_windows"
down_revision = "20261204_local_daily_totals"
branch_labels = None
depends_on = None

STORED_WINDOWS = (1, 3, 7, 14, 30, 60, 90)  # app.models.funnel.STORED_WINDOWS when this revision was written
KEYS = ("kind", "chain", "period", "utc_day", "local_day", "step")
TABLES = (
    ("analytics_funnel_windows", "analytics_funnel_rollup", False),
    ("analytics_funnel_gap_windows", "analytics_funnel_gaps", True),
)


def _create(name: str, with_bucket: bool) -> None:
    keys = [
        sa.Column("kind", sa.String(5), nullable=False),
        sa.Column("chain", sa.String(8), nullable=False),
        sa.Column("period", sa.String(1), nullable=False),
        sa.Column("utc_day", sa.Date(), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("step", sa.SmallInteger(), nullable=False, autoincrement=False),
    ]
    if with_bucket:
        keys.append(sa.Column("bucket", sa.SmallInteger(), nullable=False, autoincrement=False))
    key_names = [*KEYS, *(["bucket"] if with_bucket else [])]
    op.create_table(
        name, *keys,
        *(sa.Column(f"within_{w}", sa.BigInteger(), nullable=False) for w in STORED_WINDOWS),
        sa.PrimaryKeyConstraint(*key_names, name=op.f(f"pk_{name}")),
        sqlite_with_rowid=False,
    )
    op.create_index(f"ix_{name}_local", name, ["kind", "chain", "period", "local_day", "step", *(["bucket"] if with_bucket else [])])


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for name, source, with_bucket in TABLES:
        # MariaDB/MySQL commit DDL at once: after a failed run the table may already be there.
        if name in existing:
            op.drop_table(name)
        _create(name, with_bucket)
        # Filled from the narrow rollup: within_W sums its rows with delay_days <= W.
        narrow = sa.table(source, *(sa.column(c) for c in (*KEYS, "bucket", "delay_days", "entrants")))
        key_columns = [narrow.c[c] for c in (*KEYS, *(["bucket"] if with_bucket else []))]
        sums = [sa.func.sum(sa.case((narrow.c.delay_days <= w, narrow.c.entrants), else_=0)) for w in STORED_WINDOWS]
        target = sa.table(name, *(sa.column(c.name) for c in key_columns), *(sa.column(f"within_{w}") for w in STORED_WINDOWS))
        op.execute(
            target.insert().from_select(
                [c.name for c in key_columns] + [f"within_{w}" for w in STORED_WINDOWS],
                sa.select(*key_columns, *sums).group_by(*key_columns),
            )
        )


def downgrade() -> None:
    for name, _, _ in TABLES:
        op.drop_table(name)
