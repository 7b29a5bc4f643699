"""The ordered funnel report: a typed `FunnelQuery` in, a typed `FunnelResponse` out.

`FunnelEngine` is the seam another store (ClickHouse) can implement. `SqlFunnelEngine`
answers from the rollups when the zone is the rollups' zone or UTC and no breakdown is
asked; otherwise from the per-entrant rows of the range. Both give the same numbers.
Either way the entrants still queued for the background catch-up (`funnel_store`) are
recomputed from their events and replace their stored rows, so the answer is exact.
"""

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Integer, func, literal, literal_column, or_, select, union_all
from sqlalchemy.orm import Session

from app.models.funnel import STORED_WINDOWS, FunnelGapRollup, FunnelGapWindowRollup, FunnelRollup, FunnelStep, FunnelWindowRollup
from app.models.plan import Plan
from app.schemas.funnel import FunnelResponse, FunnelSeries, FunnelStepResult
from app.services import zones
from app.services.funnel_spec import StepRow, nearest_rank, percentile_rank, step_names
from app.services.funnel_store import pending_rows, rollup_zone_name
from app.services.span_engine import split

BREAKDOWNS = ("plan", "region", "currency", "signup_week", "signup_month")
WINDOW_ROLLUP = {FunnelRollup: FunnelWindowRollup, FunnelGapRollup: FunnelGapWindowRollup}
TOP_VALUES = 10
NONE_VALUE, OTHER_VALUE = "(none)", "Other"


@dataclass(frozen=True)
class FunnelQuery:
    start: dt.date
    end: dt.date
    by: str = "user"  # user | order
    window_days: int = 14
    tz: str = "UTC"
    breakdown: str | None = None
    exclude_internal: bool = False
    with_verified: bool = False
    internal_user_ids: frozenset[int] = frozenset()
    now: dt.datetime | None = None
    clamped: bool = False

    @property
    def chain(self) -> str:
        return "verified" if self.with_verified and self.by == "user" else "base"


class FunnelEngine(Protocol):
    def funnel(self, session: Session, query: FunnelQuery) -> FunnelResponse: ...

    def step_counts(self, session: Session, query: FunnelQuery) -> list[int]: ...


@dataclass
class _Entrant:
    entry_at: dt.datetime
    reached: int  # last step reached within the window
    gaps: dict[int, int]  # step -> gap_us from the previous step (reached steps only)
    value: str


@dataclass
class _Queued:
    """The entrants queued for the catch-up: their ids, and their stored and recomputed rows in the report."""

    ids: set[int]
    old: list[StepRow]
    new: list[StepRow]

    @classmethod
    def read(cls, session: Session, query: FunnelQuery, start_at: dt.datetime, end_before: dt.datetime) -> "_Queued":
        ids, old, new = pending_rows(session, query.by, query.chain)

        def counted(row: StepRow) -> bool:
            return start_at <= row.entry_at < end_before and row.user_id not in query.internal_user_ids

        return cls(ids, [r for r in old if counted(r)], [r for r in new if counted(r)])


class SqlFunnelEngine:
    """The funnel on the shop's own database (SQLite, MariaDB/MySQL, PostgreSQL)."""

    def __init__(self, *, use_rollups: bool = True):
        self.use_rollups = use_rollups

    def _rollup_plan(self, session: Session, query: FunnelQuery, span) -> tuple[str, "_Whole", list] | None:
        """Which rollup rows answer the range: (day column, their days, the slices at the ends read from
        their entrants), or None when the per-entrant path must (a breakdown, or no whole UTC day inside)."""
        if not self.use_rollups or query.breakdown is not None:
            return None
        # UTC days are the utc_day column whatever the rollups' zone (the usual report: no read of it).
        if query.tz == "UTC":
            return "utc_day", _Whole(query.start, query.end, span), []
        if query.tz == rollup_zone_name(session):
            return "local_day", _Whole(query.start, query.end, span), []
        # Another zone: the whole UTC days inside the range from the rollups, the slices at its ends from their entrants.
        whole, edges = split(*span)
        if whole is None:
            return None
        return "utc_day", _Whole(whole.start, whole.end, (whole.start_at, whole.end_before)), edges

    def funnel(self, session: Session, query: FunnelQuery) -> FunnelResponse:
        names = step_names(query.by, query.chain)
        span = zones.day_span(query.start, query.end, zones.zone(query.tz))  # the range's local days in UTC
        queued = _Queued.read(session, query, *span)
        plan = self._rollup_plan(session, query, span)
        if plan is not None:
            day_column, whole, edges = plan
            steps = _from_rollup(session, query, names, day_column, queued, span, whole, edges)
            return funnel_response(query, names, steps, None, "rollup")
        entrants = _entrants(session, query, queued, span)
        steps = _summarise(query, names, list(entrants.values()))
        series = _breakdown(session, query, names, entrants) if query.breakdown else None
        return funnel_response(query, names, steps, series, "entrants")

    def step_counts(self, session: Session, query: FunnelQuery) -> list[int]:
        """How many entrants reached each step: the funnel's counts without its timing and window
        detail (the overview's conversions), from the rollups' sums alone where they answer."""
        span = zones.day_span(query.start, query.end, zones.zone(query.tz))
        plan = self._rollup_plan(session, query, span)
        if plan is None:
            return [step.count for step in self.funnel(session, query).funnel]
        day_column, whole, edges = plan
        queued = _Queued.read(session, query, *span)
        reached = Counter({step: n for (step,), n in _summed(session.connection(), FunnelRollup, query, day_column, whole, ("step",)).items()})
        excluded = sorted(query.internal_user_ids)
        reached.update(step for step, _, _ in _edge_rows(session, query, edges, excluded))
        if excluded:
            reached.subtract(step for step, _, _ in _internal_rows(session, query, excluded, whole.span))
        for sign, rows in ((-1, queued.old), (1, queued.new)):
            for row in rows:
                if row.delay_days <= query.window_days:
                    reached[row.step] += sign
        return [reached[k] for k in range(1, len(step_names(query.by, query.chain)) + 1)]


def funnel_response(query, names, steps, series, source, **engine_info) -> FunnelResponse:
    """The response of either engine; `engine_info`: engine and fresh_as_of when not the SQL engine."""
    return FunnelResponse(
        **engine_info,
        start_date=query.start.isoformat(), end_date=query.end.isoformat(), clamped=query.clamped, by=query.by,
        window_days=query.window_days, tz=query.tz, breakdown=query.breakdown, exclude_internal=query.exclude_internal,
        steps=list(names), funnel=steps, breakdowns=series, source=source, now=query.now.isoformat(),
    )


def step_results(names, counts, open_short, percentiles) -> list[FunnelStepResult]:
    """counts[i]: reached step i+1; open_short[i]: reached step i, not i+1, window open."""
    results = []
    for i, name in enumerate(names):
        previous = counts[i - 1] if i else counts[0]
        missing = previous - counts[i] if i else 0
        in_progress = open_short[i] if i else 0
        median, p90 = percentiles[i] if i else (None, None)
        results.append(
            FunnelStepResult(
                name=name, count=counts[i],
                conversion_from_previous=counts[i] / previous if previous else None,
                conversion_from_start=counts[i] / counts[0] if counts[0] else None,
                dropped=missing - in_progress, in_progress=in_progress,
                median_seconds=median / 1e6 if median is not None else None,
                p90_seconds=p90 / 1e6 if p90 is not None else None,
            )
        )
    return results


# The per-entrant path ----------------------------------------------------------------


def _entrants(session: Session, query: FunnelQuery, queued: _Queued, span) -> dict[int, _Entrant]:
    s = FunnelStep
    start_at, end_before = span
    w = query.window_days
    # Reached times only grow along the chain, so the rows within the window are exactly
    # steps 1..reached of each entrant: no ordering or chain walk needed.
    conditions = [s.kind == query.by, s.chain == query.chain, s.entry_at >= start_at, s.entry_at < end_before, s.delay_days <= w]
    if query.internal_user_ids:
        conditions.append(or_(s.user_id.is_(None), s.user_id.not_in(sorted(query.internal_user_ids))))
    rows = session.connection().execute(  # Core: no ORM row processing on a range of entrants
        select(s.entrant_id, s.step, s.entry_at, s.gap_us, s.plan_id, s.region, s.currency, s.attr_delay)
        .where(*conditions)
    ).all()
    if queued.ids:
        rows = [row for row in rows if row[0] not in queued.ids]
        rows += [
            (r.entrant_id, r.step, r.entry_at, r.gap_us, r.plan_id, r.region, r.currency, r.attr_delay)
            for r in queued.new if r.delay_days <= w
        ]
    labels = _labels(session, query, rows)
    entrants: dict[int, _Entrant] = {}
    for entrant_id, step, entry_at, _, plan_id, region, currency, attr_delay in rows:
        if step == 1:
            entrants[entrant_id] = _Entrant(entry_at, 1, {}, labels(entry_at, plan_id, region, currency, attr_delay <= w))
    for entrant_id, step, _, gap_us, *_ in rows:
        if step > 1:
            entrant = entrants[entrant_id]
            entrant.reached = max(entrant.reached, step)
            entrant.gaps[step] = gap_us
    return entrants


def _labels(session: Session, query: FunnelQuery, rows):
    tz = zones.zone(query.tz)
    kind = query.breakdown
    plan_names = {}
    if kind == "plan":
        ids = {r[4] for r in rows if r[4]}
        plan_names = dict(session.execute(select(Plan.id, Plan.name).where(Plan.id.in_(ids))).all()) if ids else {}

    def label(entry_at, plan_id, region, currency, attributed: bool) -> str:
        if kind == "signup_week":
            return zones.week_start(zones.local_day(entry_at, tz)).isoformat()
        if kind == "signup_month":
            return zones.local_day(entry_at, tz).strftime("%Y-%m")
        if not attributed or (kind == "plan" and not plan_id):
            return NONE_VALUE
        if kind == "plan":
            return plan_names.get(plan_id) or f"plan {plan_id}"
        if kind == "region":
            return region or NONE_VALUE
        if kind == "currency":
            return currency or NONE_VALUE
        return ""

    return label


def _summarise(query: FunnelQuery, names, entrants: list[_Entrant]) -> list[FunnelStepResult]:
    n = len(names)
    counts = [sum(1 for e in entrants if e.reached >= k) for k in range(1, n + 1)]
    deadline = query.now - dt.timedelta(days=query.window_days)
    open_short = [0] + [sum(1 for e in entrants if e.reached == k - 1 and e.entry_at >= deadline) for k in range(2, n + 1)]
    percentiles = [(None, None)]
    for k in range(2, n + 1):
        gaps = sorted(e.gaps[k] for e in entrants if e.reached >= k)
        percentiles.append((nearest_rank(gaps, 50), nearest_rank(gaps, 90)))
    return step_results(names, counts, open_short, percentiles)


def _breakdown(session, query, names, entrants: dict[int, _Entrant]) -> list[FunnelSeries]:
    groups: dict[str, list[_Entrant]] = defaultdict(list)
    for e in entrants.values():
        groups[e.value].append(e)
    ranked = sorted(groups, key=lambda v: (-len(groups[v]), v))
    if query.breakdown in ("signup_week", "signup_month"):
        ranked = sorted(groups)  # periods read in time order; every one is shown
        top, rest = ranked, []
    else:
        top, rest = ranked[:TOP_VALUES], ranked[TOP_VALUES:]
    series = [FunnelSeries(value=v, entrants=len(groups[v]), steps=_summarise(query, names, groups[v])) for v in top]
    if rest:
        others = [e for v in rest for e in groups[v]]
        series.append(FunnelSeries(value=OTHER_VALUE, entrants=len(others), steps=_summarise(query, names, others)))
    return series


# The rollup path -----------------------------------------------------------------------


def _period_spans(start: dt.date, end: dt.date) -> list[tuple[str, dt.date, dt.date]]:
    """Whole months from the 'm' rows, the days around them from the 'd' rows: (period, first day, day after)."""
    first_full = start if start.day == 1 else zones.next_month(start)
    after_full = zones.next_month(end) if (end + dt.timedelta(days=1)).day == 1 else end.replace(day=1)
    after_end = end + dt.timedelta(days=1)
    if first_full >= after_full:
        return [("d", start, after_end)]
    spans = [("m", first_full, after_full), ("d", start, first_full), ("d", after_full, after_end)]
    return [span for span in spans if span[1] < span[2]]


@dataclass(frozen=True)
class _Whole:
    """The days the rollup rows answer for (of the day column), and the instants they cover."""

    first: dt.date
    last: dt.date
    span: tuple[dt.datetime, dt.datetime]


def _window_parts(model, query: FunnelQuery) -> list[tuple]:
    """(table, summed column, conditions) whose sums give the entrants within the query's window:
    the window rollup's column of the largest stored window up to it, plus, for another window,
    the narrow rollup's rows with delays above that stored window and within the query's."""
    stored = max(w for w in STORED_WINDOWS if w <= query.window_days)
    wide = WINDOW_ROLLUP[model].__table__
    parts = [(wide, wide.c[f"within_{stored}"], [])]
    if stored < query.window_days:
        narrow = model.__table__
        parts.append((narrow, narrow.c.entrants, [narrow.c.delay_days > stored, narrow.c.delay_days <= query.window_days]))
    return parts


def _summed(connection, model, query: FunnelQuery, day_column: str, whole: _Whole, group: tuple[str, ...]) -> Counter:
    """The entrants within the window of the rollup rows of the days, by `group`: every period span
    (whole months, the days around them) of each table in one UNION ALL, summed here."""
    parts = []
    for table, counted, window in _window_parts(model, query):
        columns = [table.c[name] for name in group]
        day = table.c[day_column]
        for period, first, after in _period_spans(whole.first, whole.last):
            parts.append(
                select(*columns, func.sum(counted).label("n"))
                .where(table.c.kind == query.by, table.c.chain == query.chain, table.c.period == period,
                       day >= first, day < after, *window)
                .group_by(*columns)
            )
    sums = Counter()
    for *key, entrants in connection.execute(parts[0] if len(parts) == 1 else union_all(*parts)):
        sums[tuple(key)] += int(entrants or 0)
    return sums


def _from_rollup(
    session: Session, query: FunnelQuery, names, day_column: str, queued: _Queued, span, whole: _Whole, edges: list
) -> list[FunnelStepResult]:
    """The funnel from the rollup rows of `whole`'s days plus the stored entrants entering in `edges`."""
    r, g = FunnelRollup, FunnelGapRollup
    w = query.window_days
    connection = session.connection()
    reached = Counter({step: n for (step,), n in _summed(connection, r, query, day_column, whole, ("step",)).items()})
    histogram: dict[int, Counter] = defaultdict(Counter)  # step -> bucket -> entrants
    for (step, bucket), entrants in _summed(connection, g, query, day_column, whole, ("step", "bucket")).items():
        histogram[step][bucket] += entrants
    start_at, end_before = span
    s = FunnelStep
    in_range = (s.kind == query.by, s.chain == query.chain, s.entry_at >= start_at, s.entry_at < end_before)
    excluded = sorted(query.internal_user_ids)
    deadline = query.now - dt.timedelta(days=w)
    if edges:
        # The range's ends: their stored rows, as the rollup holds them (queued entrants are mended below).
        end_recent = Counter()
        for step, bucket, entry_at in _edge_rows(session, query, edges, excluded):
            reached[step] += 1
            if step > 1:
                histogram[step][bucket] += 1
            if entry_at >= deadline:
                end_recent[step] += 1
    whole_start, whole_end = whole.span
    # Entrants whose window is still open (entered after the deadline), per step reached:
    # whole UTC days after the deadline's day from the day rows, that day from its entrants.
    after_deadline_day = dt.datetime.combine(deadline.astimezone(dt.UTC).date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    recent = Counter()
    parts = [
        select(table.c.step, func.sum(counted))
        .where(
            table.c.kind == query.by, table.c.chain == query.chain, table.c.period == "d", *window,
            table.c[day_column] >= whole.first, table.c[day_column] <= whole.last, table.c.utc_day >= after_deadline_day.date(),
        )
        .group_by(table.c.step)
        for table, counted, window in _window_parts(r, query)
    ]
    for step, entrants in connection.execute(parts[0] if len(parts) == 1 else union_all(*parts)):
        recent[step] += int(entrants or 0)
    if edges:
        recent.update(end_recent)
    low, high = max(deadline, whole_start), min(after_deadline_day, whole_end)
    if low < high:
        conditions = [s.kind == query.by, s.chain == query.chain, s.entry_at >= low, s.entry_at < high, s.delay_days <= w]
        if excluded:
            conditions.append(or_(s.user_id.is_(None), s.user_id.not_in(excluded)))
        # Grouped by step + 0, not step: SQLite would otherwise walk the whole chain in step
        # order to group; the expression leaves it the range index and a small sort.
        by_step = s.step + literal_column("0")  # a literal, not a parameter: PostgreSQL matches the two by text
        for step, entrants in connection.execute(select(by_step, func.count()).where(*conditions).group_by(by_step)):
            recent[step] += entrants
    if excluded:
        # Internal users are few: take their own rows back out of the rollup's sums.
        for step, bucket, entry_at in _internal_rows(session, query, excluded, whole.span):
            reached[step] -= 1
            if step > 1:
                histogram[step][bucket] -= 1
            if entry_at >= after_deadline_day:
                recent[step] -= 1
    # The queued entrants: their stored rows out, their recomputed rows in.
    added: dict[tuple[int, int], list[int]] = defaultdict(list)
    for sign, rows in ((-1, queued.old), (1, queued.new)):
        for row in rows:
            if row.delay_days > w:
                continue
            reached[row.step] += sign
            if row.step > 1:
                histogram[row.step][row.bucket] += sign
                if sign > 0:
                    added[(row.step, row.bucket)].append(row.gap_us)
            if row.entry_at >= deadline:
                recent[row.step] += sign
    n = len(names)
    counts = [reached[k] for k in range(1, n + 1)]
    open_short = [0] + [recent[k - 1] - recent[k] for k in range(2, n + 1)]
    skip = [or_(s.user_id.is_(None), s.user_id.not_in(excluded))] if excluded else []
    if queued.ids:
        skip.append(s.entrant_id.not_in(sorted(queued.ids)))
    asked = [(k, histogram[k], counts[k - 1], p) for k in range(2, n + 1) for p in (50, 90)]
    gaps = _ranked_gaps(session, query, asked, [*in_range, *skip], added)
    percentiles = [(None, None)] + [(gaps[2 * i], gaps[2 * i + 1]) for i in range(n - 1)]
    return step_results(names, counts, open_short, percentiles)


def _edge_rows(session: Session, query: FunnelQuery, edges, excluded: list[int]) -> list[tuple[int, int, dt.datetime]]:
    """(step, bucket, entry_at) of the stored rows entering in `edges` (the range's ends) within the window,
    internal users left out: one index range per end, in one UNION ALL."""
    s = FunnelStep
    parts = []
    for lo, hi in edges:
        conditions = [s.kind == query.by, s.chain == query.chain, s.entry_at >= lo, s.entry_at < hi, s.delay_days <= query.window_days]
        if excluded:
            conditions.append(or_(s.user_id.is_(None), s.user_id.not_in(excluded)))
        parts.append(select(s.step, s.bucket, s.entry_at).where(*conditions))
    if not parts:
        return []
    return list(session.connection().execute(parts[0] if len(parts) == 1 else union_all(*parts)))


def _internal_rows(session: Session, query: FunnelQuery, excluded: list[int], span) -> list[tuple[int, int, dt.datetime]]:
    """(step, bucket, entry_at) of the internal users' rows entering in `span` within the window.

    Read by user id alone (a few users' rows), then cut here: with the kind and the time range
    in the statement too, SQLite's planner walks the range's rows instead of the user index."""
    s = FunnelStep
    rows = session.connection().execute(
        select(s.step, s.bucket, s.entry_at, s.kind, s.chain, s.delay_days).where(s.user_id.in_(excluded))
    )
    return [
        (step, bucket, entry_at) for step, bucket, entry_at, kind, chain, delay in rows
        if kind == query.by and chain == query.chain and delay <= query.window_days and span[0] <= entry_at < span[1]
    ]


def _ranked_gaps(session, query, asked: list[tuple[int, Counter, int, int]], conditions, added) -> list[int | None]:
    """The exact nearest-rank gap of each (step, bucket histogram, entrants, percent): the histogram
    finds the bucket, and its rows in the range give the value; every read in one round trip."""
    s = FunnelStep
    plans, parts = [], []
    for step, buckets, n, percent in asked:
        if n == 0:
            plans.append(None)
            continue
        rank = percentile_rank(n, percent)
        for bucket in sorted(b for b in buckets if buckets[b] > 0):
            if rank <= buckets[bucket]:
                break
            rank -= buckets[bucket]
        new_gaps = sorted(added.get((step, bucket), []))
        # The stored gaps (queued entrants left out) hold all but len(new_gaps) of the ranks up
        # to `rank`: the database sorts the bucket and hands back the few around it.
        skipped = max(0, rank - 1 - len(new_gaps))
        plans.append((rank, skipped, new_gaps, len(parts)))
        ranked = (
            select(s.gap_us).where(*conditions, s.step == step, s.bucket == bucket, s.delay_days <= query.window_days)
            .order_by(s.gap_us).limit(rank - skipped).offset(skipped).subquery()
        )
        parts.append(select(literal(len(parts), Integer).label("part"), ranked.c.gap_us))
    stored: dict[int, list[int]] = defaultdict(list)
    if parts:
        for part, gap in session.connection().execute(parts[0] if len(parts) == 1 else union_all(*parts)):
            stored[part].append(gap)
    return [None if plan is None else _rank_value(*plan[:3], sorted(stored[plan[3]])) for plan in plans]


def _rank_value(rank: int, skipped: int, new_gaps: list[int], stored: list[int]) -> int | None:
    """The value at `rank` among the stored gaps from rank `skipped` + 1 on and the queued entrants' new gaps."""
    # Every value below stored[0] has a rank under `rank`, so the answer is one of these.
    for value in sorted(stored + new_gaps):
        if skipped and stored and value < stored[0]:
            continue
        if skipped + sum(v <= value for v in stored) + sum(v <= value for v in new_gaps) >= rank:
            return value
    return None


ENGINE: FunnelEngine = SqlFunnelEngine()
