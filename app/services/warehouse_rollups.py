"""The warehouse's rollups: per day and per month, counts and revenue, and exact user sets.

- `analytics_daily` / `analytics_monthly`: events and revenue per period, type, currency
  and (payments only) plan. A day is recomputed from the events (`FINAL`) for every day a
  shipped batch touches, and its month from the days: the row of the highest version is
  the period's exact figure whatever was shipped twice. Readers pick it with argMax per
  (shard, key) instead of FINAL, which costs ten times more on tables this small; `shard`
  keeps the shards' own rows of one key apart through a Distributed table.
- `analytics_daily_users` / `analytics_monthly_users`: the exact set of users per period
  and type. A set cannot count a user twice, so a row shipped twice, or a period's users
  added again, changes nothing: each refresh adds the touched days' users from the events
  and the parts merge into their union. Roaring bitmaps (`groupBitmap`) on current
  ClickHouse; Debian's 18.16 predates them and keeps exact hash sets (`uniqExact`), which
  merge the same way.

A range reads its whole months from the monthly tables and the days at its ends from the
daily ones (`covering`): a year is 12 or 13 rows per key instead of 365.
"""

import datetime as dt

from app.services.clickhouse_client import literal

DAILY = "analytics_daily"
MONTHLY = "analytics_monthly"
DAILY_USERS = "analytics_daily_users"
MONTHLY_USERS = "analytics_monthly_users"
COUNT_TABLES = {DAILY: "day", MONTHLY: "month"}
USER_TABLES = {DAILY_USERS: "day", MONTHLY_USERS: "month"}
ALL = [*COUNT_TABLES, *USER_TABLES]
PAID = "event_type = 'payment_succeeded'"
COUNT_COLUMNS = "shard, {period}, event_type, currency, plan_id, event_count, revenue_minor_units, version"


def local(name: str) -> str:
    """The table on each shard behind the Distributed `name`."""
    return f"{name}_local"


def create_statement(db: str, name: str, table: str, user_set_function: str) -> str:
    """CREATE TABLE for rollup `name` (under the name `table`: itself, or its shard-local table)."""
    if name in COUNT_TABLES:
        period = COUNT_TABLES[name]
        columns = (f"shard UInt32, {period} Date, event_type String, currency String, plan_id UInt64, "
                   "event_count UInt64, revenue_minor_units Int64, version UInt64")
        engine = (f"ReplacingMergeTree(version) PARTITION BY toYear({period}) "
                  f"ORDER BY ({period}, event_type, currency, plan_id, shard) SETTINGS index_granularity = 1024")
    else:
        period = USER_TABLES[name]
        columns = f"{period} Date, event_type String, users AggregateFunction({user_set_function}, UInt64)"
        # Small granules: a state is read (and decoded) for every row of a granule the range touches.
        engine = f"AggregatingMergeTree() PARTITION BY toYear({period}) ORDER BY ({period}, event_type) SETTINGS index_granularity = 16"
    return f"CREATE TABLE IF NOT EXISTS {db}.{table} ({columns}) ENGINE = {engine}"


def refresh_statements(
    db: str, events: str, tables: dict[str, str], shard: int, days: set[dt.date] | None, version: int, user_set_function: str
) -> list[str]:
    """The INSERTs that bring the rollups of `days` (None: all) up to the events, in order, on one shard.

    `tables` maps each rollup to the name it has on this node (shard-local on a cluster).
    """
    day_filter = f"toDate(occurred_at) IN {literal(sorted(days))}" if days is not None else "1"
    month_filter = f"toStartOfMonth(day) IN {literal(sorted({d.replace(day=1) for d in days}))}" if days is not None else "1"
    state = f"{user_set_function}State(user_id)"
    return [
        f"INSERT INTO {db}.{tables[DAILY]} ({COUNT_COLUMNS.format(period='day')}) "
        f"SELECT {shard}, toDate(occurred_at) AS day, event_type, currency, if({PAID}, plan_id, 0) AS plan, count(), "
        f"sum(if({PAID}, amount_minor_units, 0)), {version} FROM {db}.{events} FINAL WHERE {day_filter} "
        "GROUP BY day, event_type, currency, plan",
        # The months from their days as just written (the days' current rows).
        f"INSERT INTO {db}.{tables[MONTHLY]} ({COUNT_COLUMNS.format(period='month')}) "
        "SELECT shard, toStartOfMonth(day) AS month, event_type, currency, plan_id, sum(event_count), sum(revenue_minor_units), "
        f"{version} FROM {current_counts(f'{db}.{tables[DAILY]}', 'day', month_filter)} "
        "GROUP BY shard, month, event_type, currency, plan_id",
        # No FINAL: a copy of a row adds a user the set already holds.
        f"INSERT INTO {db}.{tables[DAILY_USERS]} (day, event_type, users) SELECT toDate(occurred_at) AS day, event_type, "
        f"{state} FROM {db}.{events} WHERE {day_filter} AND user_id != 0 GROUP BY day, event_type",
        f"INSERT INTO {db}.{tables[MONTHLY_USERS]} (month, event_type, users) SELECT toStartOfMonth(occurred_at) AS month, "
        f"event_type, {state} FROM {db}.{events} WHERE {day_filter} AND user_id != 0 GROUP BY month, event_type",
    ]


def current_counts(table: str, period: str, condition: str) -> str:
    """A count rollup's current rows (the highest version per shard and key) where `condition` holds."""
    return (
        f"(SELECT shard, {period}, event_type, currency, plan_id, argMax(event_count, version) AS event_count, "
        f"argMax(revenue_minor_units, version) AS revenue_minor_units FROM {table} WHERE {condition} "
        f"GROUP BY shard, {period}, event_type, currency, plan_id)"
    )


def covering(start: dt.date, end: dt.date) -> tuple[list[dt.date], list[tuple[dt.date, dt.date]]]:
    """start..end as the first days of its whole months and the day ranges left at either end."""
    first_whole = start if start.day == 1 else _next_month(start)
    after_end = end + dt.timedelta(days=1)
    last_whole_end = after_end.replace(day=1)  # whole months end before the month `end` is in, unless `end` closes it
    if first_whole >= last_whole_end:
        return [], [(start, end)]
    months, month = [], first_whole
    while month < last_whole_end:
        months.append(month)
        month = _next_month(month)
    edges = []
    if start < first_whole:
        edges.append((start, first_whole - dt.timedelta(days=1)))
    if last_whole_end <= end:
        edges.append((last_whole_end, end))
    return months, edges


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def in_periods(months: list[dt.date], edges: list[tuple[dt.date, dt.date]]) -> tuple[str, str]:
    """(monthly condition, daily condition) for the output of `covering`; '0' where none."""
    month_condition = f"month IN {literal(months)}" if months else "0"
    day_condition = " OR ".join(f"(day >= {literal(a)} AND day <= {literal(b)})" for a, b in edges) or "0"
    return month_condition, day_condition
