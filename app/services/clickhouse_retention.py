"""Repeat-buyer retention from the warehouse's events (ANALYTICS_ENGINE=clickhouse), equal to `retention.retention`.

One GROUP BY per user over the payments (`FINAL`: a row shipped twice counts once) collects
the distinct local periods (ISO week from Monday, or month, of `tz`) the user paid in, up to
the range's last period; the cohort is the earliest of them. ARRAY JOIN then counts, per
cohort of the range and period offset, the users who paid then (offset 0: the cohort's
size). Periods are days, so the events' whole seconds suffice. The per-user GROUP BY reads
the Distributed table on a cluster, so it is exact wherever a user's events are (one
shard: the table is sharded by user id). It runs on ClickHouse 18.16 and current releases.
"""

from collections import Counter

from app.models.analytics import EventType
from app.schemas.funnel import RetentionResponse
from app.services import zones
from app.services.clickhouse_client import literal
from app.services.retention import retention_response

PAID = EventType.PAYMENT_SUCCEEDED.value


def clickhouse_retention(
    warehouse_engine, *, interval: str, start, end, tz: str, internal_user_ids: frozenset[int] = frozenset(),
    exclude_internal: bool = False, clamped: bool = False,
) -> RetentionResponse:
    """Cohorts by first payment from ClickHouse: the same response as the SQL engine's, with engine and fresh_as_of."""
    first, last = zones.period_start(start, interval), zones.period_start(end, interval)
    before = zones.local_midnight(zones.add_periods(last, 1, interval), zones.zone(tz))
    local_day = f"toDate(occurred_at, {literal(tz)})"
    period, number = (
        (f"toMonday({local_day})", "toRelativeWeekNum") if interval == "week" else (f"toStartOfMonth({local_day})", "toRelativeMonthNum")
    )
    conditions = [f"event_type = {literal(PAID)}", "user_id != 0", f"occurred_at < {literal(before)}"]
    if internal_user_ids:
        conditions.append(f"user_id NOT IN {literal(sorted(internal_user_ids))}")
    rows = warehouse_engine.client.rows(
        f"SELECT cohort, {number}(paid) - {number}(cohort) AS period_offset, count() FROM ("
        f"SELECT groupUniqArray({period}) AS periods, arrayReduce('min', periods) AS cohort "
        f"FROM {warehouse_engine.table} FINAL WHERE {' AND '.join(conditions)} GROUP BY user_id"
        f") ARRAY JOIN periods AS paid WHERE cohort >= {literal(first)} AND cohort <= {literal(last)} "
        "GROUP BY cohort, period_offset"
    )
    counts = Counter({(cohort, int(offset)): int(n) for cohort, offset, n in rows})
    return retention_response(
        counts, interval=interval, start=start, end=end, tz=tz, exclude_internal=exclude_internal, clamped=clamped,
        source="clickhouse", engine="clickhouse", fresh_as_of=warehouse_engine.fresh_as_of(),
    )
