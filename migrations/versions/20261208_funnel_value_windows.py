"""Funnel windows per breakdown key ("plan id|currency"), for plan, region and currency breakdowns from the
rollups; the steps' bucket index covers the attribution too (a breakdown's percentile reads).

Revision ID: 20261208_funnel_value_windows
Revises: 20261206_funnel_fine_gaps
"""

import datetime as dt
from bisect import bisect_left
from collections import Counter
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "20261208_funnel_value_windows"
down_revision = "20261206_funnel_fine_gaps"
branch_labels = None
depends_on = None

NAME = "analytics_funnel_value_windows"
# As app.models.funnel / app.services.funnel_spec had them when this revision was written.
STORED_WINDOWS = (1, 3, 7, 14, 30, 60, 90)
BUCKET_INDEX = "ix_analytics_funnel_steps_bucket"
BUCKET_COLUMNS = ["kind", "chain", "step", "bucket", "entry_at", "delay_days", "gap_us"]
COVERED = ["attr_delay", "plan_id", "currency"]
KEYS = ("kind", "chain", "period", "utc_day", "local_day", "step", "bucket", "value")
BATCH = 10_000


def _create() -> None:
    op.create_table(
        NAME,
        sa.Column("kind", sa.String(5), nullable=False),
        sa.Column("chain", sa.String(8), nullable=False),
        sa.Column("period", sa.String(1), nullable=False),
        sa.Column("utc_day", sa.Date(), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("step", sa.SmallInteger(), nullable=False, autoincrement=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False, autoincrement=False),
        sa.Column("value", sa.String(64), nullable=False),
        *(sa.Column(f"within_{w}", sa.BigInteger(), nullable=False) for w in STORED_WINDOWS),
        sa.PrimaryKeyConstraint(*KEYS, name=op.f(f"pk_{NAME}")),
        sqlite_with_rowid=False,
    )
    op.create_index(f"ix_{NAME}_local", NAME, ["kind", "chain", "period", "local_day", "step", "bucket", "value"])


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
    indexes = {index["name"]: index["column_names"] for index in sa.inspect(bind).get_indexes("analytics_funnel_steps")}
    if indexes.get(BUCKET_INDEX) != BUCKET_COLUMNS + COVERED:
        op.drop_index(BUCKET_INDEX, table_name="analytics_funnel_steps")
        op.create_index(BUCKET_INDEX, "analytics_funnel_steps", BUCKET_COLUMNS + COVERED)
    zone = _zone(bind)
    names = ("kind", "chain", "step", "delay_days", "bucket", "plan_id", "currency", "attr_delay")
    steps = sa.table("analytics_funnel_steps", *(sa.column(c) for c in names), sa.column("entry_at", UTCDateTime()))
    # First the rows per distinct key and (first stored window holding the step, first holding the checkout):
    # far fewer than the rows, and each is spread over the windows once.
    grouped: Counter = Counter()
    rows = bind.execute(  # streamed for this statement only (the connection's own option would stay on it)
        sa.select(*(steps.c[c] for c in names), steps.c.entry_at).where(steps.c.delay_days <= max(STORED_WINDOWS)),
        execution_options={"stream_results": True},
    )
    for kind, chain, step, delay, bucket, plan_id, currency, attr_delay, entry_at in rows:
        utc_day = entry_at.astimezone(dt.UTC).date()
        local = entry_at.astimezone(zone).date()
        grouped[(kind, chain, step, bucket, plan_id, currency, utc_day, local,
                 bisect_left(STORED_WINDOWS, delay), bisect_left(STORED_WINDOWS, attr_delay))] += 1
    counts: dict[tuple, list[int]] = {}
    for (kind, chain, step, bucket, plan_id, currency, utc_day, local, counted_from, attributed_from), n in grouped.items():
        days = (("d", utc_day, local), ("m", utc_day.replace(day=1), local.replace(day=1)))
        attributed = f"{plan_id}|{currency}"  # funnel_spec.value_key of an attributed row
        for i in range(counted_from, len(STORED_WINDOWS)):
            value = attributed if i >= attributed_from else ""
            for period, u, lo in days:
                key = (kind, chain, period, u, lo, step, bucket, value)
                within = counts.get(key)
                if within is None:
                    within = counts[key] = [0] * len(STORED_WINDOWS)
                within[i] += n
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
    op.drop_index(BUCKET_INDEX, table_name="analytics_funnel_steps")
    op.create_index(BUCKET_INDEX, "analytics_funnel_steps", BUCKET_COLUMNS)
