"""Funnel gap windows by fine bucket (eight per gap bucket), for the percentiles' exact reads.

Revision ID: 20261206_funnel_fine_gaps
Revises: 20261205_funnel_windows
"""

import datetime as dt
from bisect import bisect_right
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "20261206_funnel_fine_gaps"
down_revision = "20261205_funnel_windows"
branch_labels = None
depends_on = None

NAME = "analytics_funnel_fine_gap_windows"
# As app.models.funnel / app.services.funnel_spec had them when this revision was written.
STORED_WINDOWS = (1, 3, 7, 14, 30, 60, 90)
FINE_BOUNDS_US = [0] + [round(1_000_000 * 2 ** (k / 64)) for k in range(24 * 64)]
KEYS = ("kind", "chain", "period", "step", "fine", "utc_day", "local_day")
BATCH = 10_000


def _create() -> None:
    op.create_table(
        NAME,
        sa.Column("kind", sa.String(5), nullable=False),
        sa.Column("chain", sa.String(8), nullable=False),
        sa.Column("period", sa.String(1), nullable=False),
        sa.Column("step", sa.SmallInteger(), nullable=False, autoincrement=False),
        sa.Column("fine", sa.SmallInteger(), nullable=False, autoincrement=False),
        sa.Column("utc_day", sa.Date(), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        *(sa.Column(f"within_{w}", sa.BigInteger(), nullable=False) for w in STORED_WINDOWS),
        sa.PrimaryKeyConstraint(*KEYS, name=op.f(f"pk_{NAME}")),
        sqlite_with_rowid=False,
    )
    op.create_index(f"ix_{NAME}_local", NAME, ["kind", "chain", "period", "step", "fine", "local_day"])


def _zone(bind) -> ZoneInfo:
    """The zone of the rollups' local days: the one the last rebuild recorded, else ANALYTICS_TIMEZONE."""
    from app.config import get_settings

    name = bind.execute(sa.text("SELECT value FROM analytics_rollup_meta WHERE name = 'local_zone'")).scalar()
    return ZoneInfo(name or get_settings().analytics_timezone)


def upgrade() -> None:
    from app.db import UTCDateTime

    bind = op.get_bind()
    if NAME in set(sa.inspect(bind).get_table_names()):
        op.drop_table(NAME)  # MariaDB/MySQL commit DDL at once: after a failed run the table may be there
    _create()
    zone = _zone(bind)
    steps = sa.table("analytics_funnel_steps", *(sa.column(c) for c in ("kind", "chain", "step", "delay_days", "gap_us")),
                     sa.column("entry_at", UTCDateTime()))
    counts: dict[tuple, list[int]] = {}
    rows = bind.execute(  # streamed for this statement only (the connection's own option would stay on it)
        sa.select(steps.c.kind, steps.c.chain, steps.c.step, steps.c.entry_at, steps.c.delay_days, steps.c.gap_us)
        .where(steps.c.step > 1, steps.c.delay_days <= max(STORED_WINDOWS)),
        execution_options={"stream_results": True},
    )
    for kind, chain, step, entry_at, delay, gap_us in rows:
        fine = min(bisect_right(FINE_BOUNDS_US, gap_us) - 1, len(FINE_BOUNDS_US) - 1)
        utc_day = entry_at.astimezone(dt.UTC).date()
        local = entry_at.astimezone(zone).date()
        for key in ((kind, chain, "d", step, fine, utc_day, local), (kind, chain, "m", step, fine, utc_day.replace(day=1), local.replace(day=1))):
            within = counts.get(key)
            if within is None:
                within = counts[key] = [0] * len(STORED_WINDOWS)
            for i, w in enumerate(STORED_WINDOWS):
                if delay <= w:
                    within[i] += 1
    target = sa.table(NAME, *(sa.column(c) for c in KEYS), *(sa.column(f"within_{w}") for w in STORED_WINDOWS))
    batch = []
    for key, within in sorted(counts.items()):
        batch.append({**dict(zip(KEYS, key, strict=True)), **{f"within_{w}": n for w, n in zip(STORED_WINDOWS, within, strict=True)}})
        if len(batch) == BATCH:
            bind.execute(target.insert(), batch)
            batch = []
    if batch:
        bind.execute(target.insert(), batch)


def downgrade() -> None:
    op.drop_table(NAME)
