"""Derived funnel and retention tables, kept up to date in the background from a queue.

`record_event` only queues the event's user and order in `analytics_funnel_pending` (one
row, in the business transaction); the background catch-up applies queued rows to the
tables below and deletes them, and reports recompute the still-queued entrants from
their events at query time, so every answer equals a recount.

`analytics_funnel_steps` holds, per entrant (a user for by=user, an order for by=order)
and chain, the time each step was first reached, independent of any window. The two
narrow rollups count those rows per (entry day, step, delay in days, gap bucket) so that
any window of 1..90 days is answered from a few thousand rows; the two window rollups
hold the same counts without the delay, one column per window the dashboard offers, so
those windows read a row per (day, step, bucket) instead of one per delay too. All of it can be rebuilt from
`analytics_events` (plus `users.verified_at`) by `python -m app rebuild-rollups`.
"""

import datetime as dt

from sqlalchemy import BigInteger, Column, Date, Index, Integer, SmallInteger, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime

# The windows the dashboard offers: their counts are columns of the window rollups below.
STORED_WINDOWS = (1, 3, 7, 14, 30, 60, 90)
WINDOW_COLUMNS = tuple(f"within_{w}" for w in STORED_WINDOWS)


class FunnelStep(Base):
    """One reached step of one entrant in one chain ('base', or 'verified' with the login-code step)."""

    __tablename__ = "analytics_funnel_steps"
    __table_args__ = (
        # The exact path (other zones, breakdown percentiles, open windows) reads a range of entries.
        Index("ix_analytics_funnel_steps_range", "kind", "chain", "entry_at", "step", "delay_days", "entrant_id"),
        # Percentile refinement: one gap bucket's rows of a range, covering the filter, the value and a
        # breakdown's attribution (the value rollup's percentiles read them too).
        Index(
            "ix_analytics_funnel_steps_bucket",
            "kind", "chain", "step", "bucket", "entry_at", "delay_days", "gap_us", "attr_delay", "plan_id", "currency",
        ),
    )

    kind: Mapped[str] = mapped_column(String(5), primary_key=True)  # user | order
    entrant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chain: Mapped[str] = mapped_column(String(8), primary_key=True)  # base | verified
    step: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)  # 1 = entry
    user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    entry_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reached_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    gap_us: Mapped[int] = mapped_column(BigInteger)  # from the previous step; 0 for the entry
    delay_days: Mapped[int] = mapped_column(SmallInteger)  # ceil((reached - entry) / 1 day), 91 = beyond 90
    bucket: Mapped[int] = mapped_column(SmallInteger)  # of gap_us, see funnel_spec.GAP_BOUNDS_US
    plan_id: Mapped[int] = mapped_column(Integer)  # of the attributed checkout; 0 = none
    region: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    attr_delay: Mapped[int] = mapped_column(SmallInteger)  # delay of the attributed checkout; 127 = none


class FunnelPending(Base):
    """A user and/or order whose funnel and retention rows may not reflect its events yet."""

    __tablename__ = "analytics_funnel_pending"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    order_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class FunnelRollup(Base):
    """Entrants per (kind, chain, step, period, UTC day, local day, delay in days).

    period 'd' rows are days; 'm' rows are months (both day columns hold the month's
    first day, of UTC and of the rollup zone). The local day is in the zone recorded in
    `analytics_rollup_meta` (ANALYTICS_TIMEZONE when the rows were written).
    """

    __tablename__ = "analytics_funnel_rollup"
    __table_args__ = (
        Index("ix_analytics_funnel_rollup_local", "kind", "chain", "period", "local_day", "step", "delay_days", "entrants"),
    )

    kind: Mapped[str] = mapped_column(String(5), primary_key=True)
    chain: Mapped[str] = mapped_column(String(8), primary_key=True)
    # Days before steps in the key: a report reads a range of days for all steps.
    period: Mapped[str] = mapped_column(String(1), primary_key=True)
    utc_day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    local_day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    step: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    delay_days: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    entrants: Mapped[int] = mapped_column(BigInteger, default=0)


class FunnelGapRollup(Base):
    """The same for steps 2+, split by the bucket (eight per doubling) of the time from the previous step.

    It locates the bucket holding a percentile's rank; that bucket's exact gaps are then
    read from analytics_funnel_steps.
    """

    __tablename__ = "analytics_funnel_gaps"
    __table_args__ = (
        Index("ix_analytics_funnel_gaps_local", "kind", "chain", "period", "local_day", "step", "delay_days", "bucket", "entrants"),
    )

    kind: Mapped[str] = mapped_column(String(5), primary_key=True)
    chain: Mapped[str] = mapped_column(String(8), primary_key=True)
    # Days before steps in the key: a report reads a range of days for all steps.
    period: Mapped[str] = mapped_column(String(1), primary_key=True)
    utc_day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    local_day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    step: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    delay_days: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    entrants: Mapped[int] = mapped_column(BigInteger, default=0)


def _window_table(name: str, *, with_bucket: bool, extra_keys: tuple[Column, ...] = ()) -> Table:
    keys = [
        Column("kind", String(5), primary_key=True),
        Column("chain", String(8), primary_key=True),
        Column("period", String(1), primary_key=True),
        Column("utc_day", Date, primary_key=True),
        Column("local_day", Date, primary_key=True),
        Column("step", SmallInteger, primary_key=True, autoincrement=False),
    ]
    if with_bucket:
        keys.append(Column("bucket", SmallInteger, primary_key=True, autoincrement=False))
    keys += extra_keys
    local = ["kind", "chain", "period", "local_day", "step"] + (["bucket"] if with_bucket else []) + [c.name for c in extra_keys]
    return Table(
        name, Base.metadata, *keys,
        *(Column(column, BigInteger, nullable=False, default=0) for column in WINDOW_COLUMNS),
        Index(f"ix_{name}_local", *local),
        # Clustered by the key on SQLite too: a report reads a range of days' rows, not an index then the table.
        sqlite_with_rowid=False,
    )


class FunnelWindowRollup(Base):
    """FunnelRollup without the delay: per key, the entrants reached within each stored window
    (`within_14` = rows with delay_days <= 14), so a report in one of those windows sums one
    column over a few rows per day instead of a row per delay. Other windows add the narrow
    table's rows with delays between the nearest stored window and theirs."""

    __tablename__ = "analytics_funnel_windows"
    __table__ = _window_table(__tablename__, with_bucket=False)


class FunnelGapWindowRollup(Base):
    """FunnelGapRollup in the same shape: per (…, step, gap bucket), entrants within each stored window."""

    __tablename__ = "analytics_funnel_gap_windows"
    __table__ = _window_table(__tablename__, with_bucket=True)


class FunnelFineGapWindowRollup(Base):
    """FunnelGapWindowRollup by fine bucket (`funnel_spec.FINE_BOUNDS_US`, eight per bucket): read only for the
    bucket holding a percentile's rank, so that the exact read of analytics_funnel_steps sorts an eighth of it."""

    __tablename__ = "analytics_funnel_fine_gap_windows"
    __table__ = Table(
        __tablename__, Base.metadata,
        # Step and fine bucket before the days: a read seeks each of a bucket's eight fine buckets,
        # then reads the range's days of it.
        Column("kind", String(5), primary_key=True),
        Column("chain", String(8), primary_key=True),
        Column("period", String(1), primary_key=True),
        Column("step", SmallInteger, primary_key=True, autoincrement=False),
        Column("fine", SmallInteger, primary_key=True, autoincrement=False),
        Column("utc_day", Date, primary_key=True),
        Column("local_day", Date, primary_key=True),
        *(Column(column, BigInteger, nullable=False, default=0) for column in WINDOW_COLUMNS),
        Index(f"ix_{__tablename__}_local", "kind", "chain", "period", "step", "fine", "local_day"),
        sqlite_with_rowid=False,
    )


class FunnelValueWindowRollup(Base):
    """FunnelGapWindowRollup per breakdown key ("plan id|currency" of the attributed checkout, or '' for none,
    as `funnel_spec.value_key` gives it within each window; step 1 with bucket 0): a plan, region or currency
    breakdown's counts, open windows and gap histograms come from its rows, as the funnel's come from the others."""

    __tablename__ = "analytics_funnel_value_windows"
    __table__ = _window_table(__tablename__, with_bucket=True, extra_keys=(Column("value", String(64), primary_key=True),))


class FunnelMonthVersion(Base):
    """A token of the funnel rollups' rows of a month (a UTC or local month, by its first day), changed by every
    change to them: a reader keeps a closed month's sums while the token stays (`funnel_month_cache`)."""

    __tablename__ = "analytics_funnel_month_versions"

    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    # Grown by a random amount, not by one: a rolled-back change leaves no token that a later change could repeat.
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class UserPaidPeriod(Base):
    """A period (week from Monday / month, of the rollup zone) in which a user paid; unique per user."""

    __tablename__ = "analytics_user_paid_periods"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    interval: Mapped[str] = mapped_column(String(5), primary_key=True)  # week | month
    period_start: Mapped[dt.date] = mapped_column(Date, primary_key=True)


class RetentionRollup(Base):
    """Users of a first-payment cohort who paid in the period `period_offset` after it (0 = cohort size)."""

    __tablename__ = "analytics_retention"

    interval: Mapped[str] = mapped_column(String(5), primary_key=True)
    cohort_start: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    period_offset: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    users: Mapped[int] = mapped_column(BigInteger, default=0)


class RollupMeta(Base):
    """Facts about the derived tables, e.g. the zone of their local days."""

    __tablename__ = "analytics_rollup_meta"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
