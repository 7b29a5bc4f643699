"""A plan, region or currency breakdown of the funnel from the value rollup (`analytics_funnel_value_windows`).

Per value, the rollup holds what the window and gap rollups hold for the whole funnel: entrants
per (day, step, gap bucket) within each stored window. So a breakdown reads one row per (day,
value, step, bucket) of the range, mends them as `funnel_rollup_path.from_rollup` mends the
funnel's (the deadline day's open windows, internal users, queued entrants) and finds each
value's percentiles in its own histogram, whose bucket's rows in `analytics_funnel_steps` give the
exact value. `funnel_query.SqlFunnelEngine` takes this path for a stored window in UTC or the
rollups' zone; its results equal the per-entrant path's.
"""

import datetime as dt
from collections import Counter, defaultdict
from typing import TYPE_CHECKING

from sqlalchemy import Integer, and_, func, literal, literal_column, or_, select, union_all
from sqlalchemy.orm import Session

from app.models.funnel import FunnelStep, FunnelValueWindowRollup
from app.models.plan import Plan
from app.schemas.funnel import FunnelSeries
from app.services import funnel_month_cache
from app.services.dates import whole_months
from app.services.funnel_rollup_path import Whole, last_data_day, period_spans
from app.services.funnel_spec import NO_VALUE, NONE_VALUE, OTHER_VALUE, TOP_VALUES, locate_rank, value_key

if TYPE_CHECKING:
    from app.services.funnel_query import FunnelQuery, Queued

class ValueCounts:
    """Per raw value: entrants by (step, bucket) within the window, and those whose window is open by step."""

    def __init__(self) -> None:
        self.histogram: dict[str, Counter] = defaultdict(Counter)  # value -> (step, bucket) -> entrants
        self.recent: dict[str, Counter] = defaultdict(Counter)  # value -> step -> entrants after the deadline
        self.added: dict[str, dict[tuple[int, int], list[int]]] = defaultdict(lambda: defaultdict(list))  # queued new gaps


def value_series(session: Session, query: "FunnelQuery", names, day_column: str, queued: "Queued", whole: Whole,
                 internal: list[tuple], step_results) -> list[FunnelSeries]:
    """The breakdown's series (the 10 largest labels by entrants, then "Other") from the value rollup rows of
    `whole`'s days; `internal`: the internal users' rows with their plan, currency and attr_delay (`internal_rows`)."""
    counts = _counts(session, query, day_column, queued, whole, internal)
    labels = _labels(session, query.breakdown, counts.histogram)
    groups: dict[str, set[str]] = defaultdict(set)
    for value, label in labels.items():
        groups[label].add(value)
    entrants = {label: sum(counts.histogram[v][(1, 0)] for v in values) for label, values in groups.items()}
    ranked = sorted((label for label in groups if entrants[label] > 0), key=lambda label: (-entrants[label], label))
    shown = [(label, groups[label]) for label in ranked[:TOP_VALUES]]
    if len(ranked) > TOP_VALUES:
        shown.append((OTHER_VALUE, set().union(*(groups[label] for label in ranked[TOP_VALUES:]))))
    n = len(names)
    s = FunnelStep
    start_at, end_before = whole.span
    conditions = [s.kind == query.by, s.chain == query.chain, s.entry_at >= start_at, s.entry_at < end_before]
    excluded = sorted(query.internal_user_ids)
    if excluded:
        conditions.append(or_(s.user_id.is_(None), s.user_id.not_in(excluded)))
    if queued.ids:
        conditions.append(s.entrant_id.not_in(sorted(queued.ids)))
    summaries, asked = [], []
    for label, values in shown:
        histogram, recent, added = Counter(), Counter(), defaultdict(list)
        for value in values:
            histogram.update(counts.histogram[value])
            recent.update(counts.recent[value])
            for key, gaps in counts.added[value].items():
                added[key] += gaps
        reached = Counter()
        by_step: dict[int, Counter] = defaultdict(Counter)
        for (step, bucket), entrants_in in histogram.items():
            reached[step] += entrants_in
            by_step[step][bucket] += entrants_in
        step_counts = [reached[k] for k in range(1, n + 1)]
        open_short = [0] + [recent[k - 1] - recent[k] for k in range(2, n + 1)]
        asked += [(k, by_step[k], step_counts[k - 1], p, values, added) for k in range(2, n + 1) for p in (50, 90)]
        summaries.append((label, step_counts, open_short))
    gaps = _ranked_value_gaps(session, query, asked, conditions)
    series, per_series = [], 2 * (n - 1)
    for index, (label, step_counts, open_short) in enumerate(summaries):
        mine = gaps[index * per_series:(index + 1) * per_series]
        percentiles = [(None, None)] + [(mine[2 * i], mine[2 * i + 1]) for i in range(n - 1)]
        series.append(FunnelSeries(value=label, entrants=step_counts[0], steps=step_results(names, step_counts, open_short, percentiles)))
    return series


def _ranked_value_gaps(session: Session, query: "FunnelQuery", asked: list[tuple], conditions) -> list[int | None]:
    """The exact nearest-rank gap of each (step, bucket histogram, entrants, percent, raw values, queued new gaps):
    its histogram finds the bucket; each (step, bucket) found is read once, in one round trip, for the plans of the
    values that found it (the index covers the filter), and each value's rows of it give the answer."""
    s = FunnelStep
    w = query.window_days
    # (step, bucket, rank within the bucket, raw values, queued new gaps) or None
    located = [
        (step, *locate_rank(buckets, n, percent), values, added) if n else None
        for step, buckets, n, percent, values, added in asked
    ]
    keys_of: dict[tuple[int, int], set[str]] = defaultdict(set)  # (step, bucket) -> the keys whose rows of it are needed
    for place in located:
        if place is not None:
            keys_of[(place[0], place[1])] |= place[3]
    wanted = sorted(keys_of)
    parts = [
        select(literal(part, Integer).label("part"), s.gap_us, s.attr_delay, s.plan_id, s.currency)
        .where(*conditions, s.step == step, s.bucket == bucket, s.delay_days <= w, _keys_filter(keys_of[(step, bucket)], w))
        for part, (step, bucket) in enumerate(wanted)
    ]
    stored: dict[tuple[int, int], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))  # (step, bucket) -> value -> gaps
    if parts:
        for part, gap_us, attr_delay, plan_id, currency in session.connection().execute(parts[0] if len(parts) == 1 else union_all(*parts)):
            stored[wanted[part]][value_key(plan_id, currency, attr_delay, w)].append(gap_us)
    answers = []
    for place in located:
        if place is None:
            answers.append(None)
            continue
        step, bucket, rank, values, added = place
        by_value = stored[(step, bucket)]
        mine = sorted([*added.get((step, bucket), []), *(gap for value in values for gap in by_value.get(value, ()))])
        answers.append(mine[rank - 1] if rank <= len(mine) else None)
    return answers


def _keys_filter(keys: set[str], window_days: int):
    """The step rows that can have one of these keys within the window (by plan; the key itself is checked after)."""
    s = FunnelStep
    plans = sorted({int(key.split("|", 1)[0]) for key in keys if key != NO_VALUE})
    either = [and_(s.attr_delay <= window_days, s.plan_id.in_(plans))] if plans else []
    if NO_VALUE in keys:
        either.append(s.attr_delay > window_days)
    return or_(*either)


def _counts(session: Session, query: "FunnelQuery", day_column: str, queued: "Queued", whole: Whole, internal: list[tuple]) -> ValueCounts:
    table = FunnelValueWindowRollup.__table__
    w = query.window_days
    counted = table.c[f"within_{w}"]
    key = (table.c.kind == query.by, table.c.chain == query.chain)
    day = table.c[day_column]
    connection = session.connection()
    counts = ValueCounts()
    spans = period_spans(whole.first, whole.last, last_data_day(query))
    months = [month for period, first, after, _ in spans if period == "m" for month in whole_months(first, after - dt.timedelta(days=1))]

    def read_months(wanted: list[dt.date]) -> dict[dt.date, dict[str, Counter]]:
        sums: dict[dt.date, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        rows = connection.execute(
            select(day, table.c.value, table.c.step, table.c.bucket, func.sum(counted))
            .where(*key, table.c.period == "m", day.in_(wanted)).group_by(day, table.c.value, table.c.step, table.c.bucket)
        )
        for month, value, step, bucket, entrants in rows:
            sums[month][value][(step, bucket)] += int(entrants or 0)
        return sums

    def add_up(per_month: list) -> dict[str, Counter]:
        total: dict[str, Counter] = defaultdict(Counter)
        for sums in per_month:
            for value, histogram in (sums or {}).items():
                total[value].update(histogram)
        return dict(total)

    shape = ("value windows", query.by, query.chain, w, day_column)
    for value, histogram in funnel_month_cache.combined(connection, shape, months, read_months, add_up).items():
        counts.histogram[value] = Counter(histogram)  # a copy: the kept sums are shared
    parts = [
        select(literal(sign, Integer).label("sign"), table.c.value, table.c.step, table.c.bucket, func.sum(counted))
        .where(*key, table.c.period == period, day >= first, day < after)
        .group_by(table.c.value, table.c.step, table.c.bucket)
        for period, first, after, sign in spans if period == "d"
    ]
    for sign, value, step, bucket, entrants in connection.execute(parts[0] if len(parts) == 1 else union_all(*parts)) if parts else []:
        counts.histogram[value][(step, bucket)] += sign * int(entrants or 0)
    deadline = query.now - dt.timedelta(days=w)
    whole_start, whole_end = whole.span
    # Open windows, as from_rollup counts them: the day rows after the deadline's day, that day from its entrants.
    after_deadline_day = dt.datetime.combine(deadline.astimezone(dt.UTC).date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    if whole_end > deadline:
        days = [day >= whole.first, day <= whole.last, table.c.utc_day >= after_deadline_day.date()]
        if day_column == "utc_day":  # one lower bound: SQLite's planner would take the range's, a year of rows
            days = [day >= max(whole.first, after_deadline_day.date()), day <= whole.last]
        recent = select(table.c.value, table.c.step, func.sum(counted)).where(*key, table.c.period == "d", *days).group_by(table.c.value, table.c.step)
        for value, step, entrants in connection.execute(recent):
            counts.recent[value][step] += int(entrants or 0)
    low, high = max(deadline, whole_start), min(after_deadline_day, whole_end)
    excluded = sorted(query.internal_user_ids)
    if low < high:
        s = FunnelStep
        conditions = [s.kind == query.by, s.chain == query.chain, s.entry_at >= low, s.entry_at < high, s.delay_days <= w]
        if excluded:
            conditions.append(or_(s.user_id.is_(None), s.user_id.not_in(excluded)))
        by_step = s.step + literal_column("0")  # as in from_rollup: keeps SQLite on the range index
        grouped = (by_step, s.plan_id, s.currency, s.attr_delay)
        for step, plan_id, currency, attr_delay, entrants in connection.execute(
            select(*grouped, func.count()).where(*conditions).group_by(*grouped)
        ):
            counts.recent[value_key(plan_id, currency, attr_delay, w)][step] += entrants
    for step, bucket, entry_at, _gap_us, plan_id, currency, attr_delay in internal:
        value = value_key(plan_id, currency, attr_delay, w)
        counts.histogram[value][(step, bucket)] -= 1
        if entry_at >= after_deadline_day:
            counts.recent[value][step] -= 1
    for sign, rows in ((-1, queued.old), (1, queued.new)):
        for row in rows:
            if row.delay_days > w:
                continue
            value = value_key(row.plan_id, row.currency, row.attr_delay, w)
            counts.histogram[value][(row.step, row.bucket)] += sign
            if row.entry_at >= deadline:
                counts.recent[value][row.step] += sign
            if sign > 0 and row.step > 1:
                counts.added[value][(row.step, row.bucket)].append(row.gap_us)
    return counts


def _labels(session: Session, dimension: str, keys) -> dict[str, str]:
    """The label each breakdown key is shown as: its plan's name (two plans of one name are one label), its
    plan's region, or its currency; "(none)" without one."""
    parsed = {key: key.split("|", 1) for key in keys if key != NO_VALUE}
    ids = sorted({int(plan_id) for plan_id, _ in parsed.values() if int(plan_id)})
    plans = {}
    if ids and dimension != "currency":
        plans = {plan_id: (name, region) for plan_id, name, region in session.execute(select(Plan.id, Plan.name, Plan.region).where(Plan.id.in_(ids)))}
    labels = {}
    for key in keys:
        plan_id, currency = parsed.get(key, ("0", ""))
        name, region = plans.get(int(plan_id), (None, ""))
        if dimension == "plan":
            label = (name or f"plan {plan_id}") if int(plan_id) else ""
        else:
            label = region if dimension == "region" else currency
        labels[key] = label or NONE_VALUE
    return labels
