"""The ordered funnel report: a typed `FunnelQuery` in, a typed `FunnelResponse` out.

`FunnelEngine` is the seam another store implements (`clickhouse_funnel`). `SqlFunnelEngine`
answers from the rollups (`funnel_rollup_path`; a plan, region or currency breakdown in a stored
window from `funnel_value_path`, a signup period one a period at a time) when the zone is the
rollups' zone or UTC, and otherwise from the per-entrant rows of the range (here). Both give the same numbers.
Either way the entrants still queued for the background catch-up (`funnel_store`) are
recomputed from their events and replace their stored rows, so the answer is exact.
"""

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import DateTime, or_, select, type_coerce
from sqlalchemy.orm import Session

from app.models.funnel import STORED_WINDOWS, FunnelRollup, FunnelStep
from app.models.plan import Plan
from app.schemas.funnel import FunnelResponse, FunnelSeries, FunnelStepResult
from app.services import zones
from app.services.funnel_rollup_path import Whole, edge_rows, from_rollup, internal_rows, summed
from app.services.funnel_spec import NONE_VALUE, OTHER_VALUE, TOP_VALUES, VALUE_DIMENSIONS, StepRow, nearest_rank, step_names
from app.services.funnel_store import pending_rows, rollup_zone_name
from app.services.funnel_value_path import value_series
from app.services.span_engine import split

BREAKDOWNS = ("plan", "region", "currency", "signup_week", "signup_month")
PERIOD_BREAKDOWNS = ("signup_week", "signup_month")  # answered from the rollups, a period at a time


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
class Queued:
    """The entrants queued for the catch-up: their ids, and their stored and recomputed rows in the report."""

    ids: set[int]
    old: list[StepRow]
    new: list[StepRow]

    @classmethod
    def read(cls, session: Session, query: FunnelQuery, start_at: dt.datetime, end_before: dt.datetime) -> "Queued":
        ids, old, new = pending_rows(session, query.by, query.chain)

        def counted(row: StepRow) -> bool:
            return start_at <= row.entry_at < end_before and row.user_id not in query.internal_user_ids

        return cls(ids, [r for r in old if counted(r)], [r for r in new if counted(r)])


class SqlFunnelEngine:
    """The funnel on the shop's own database (SQLite, MariaDB/MySQL, PostgreSQL)."""

    def __init__(self, *, use_rollups: bool = True):
        self.use_rollups = use_rollups

    def _rollup_plan(self, session: Session, query: FunnelQuery, span) -> tuple[str, Whole, list] | None:
        """Which rollup rows answer the range: (day column, their days, the slices at the ends read from
        their entrants), or None when the per-entrant path must (a breakdown it cannot answer, or no whole UTC day inside)."""
        if not self.use_rollups:
            return None
        if query.breakdown in VALUE_DIMENSIONS and query.window_days not in STORED_WINDOWS:
            return None  # the value rollup keeps the stored windows only
        if query.breakdown is not None and query.tz not in ("UTC", rollup_zone_name(session)):
            return None  # a signup period or a value's rows are whole rollup days only in the rollups' zones
        # UTC days are the utc_day column whatever the rollups' zone (the usual report: no read of it).
        if query.tz == "UTC":
            return "utc_day", Whole(query.start, query.end, span), []
        if query.tz == rollup_zone_name(session):
            return "local_day", Whole(query.start, query.end, span), []
        # Another zone: the whole UTC days inside the range from the rollups, the slices at its ends from their entrants.
        whole, edges = split(*span)
        if whole is None:
            return None
        return "utc_day", Whole(whole.start, whole.end, (whole.start_at, whole.end_before)), edges

    def funnel(self, session: Session, query: FunnelQuery) -> FunnelResponse:
        names = step_names(query.by, query.chain)
        span = zones.day_span(query.start, query.end, zones.zone(query.tz))  # the range's local days in UTC
        queued = Queued.read(session, query, *span)
        plan = self._rollup_plan(session, query, span)
        if plan is not None:
            day_column, whole, edges = plan
            steps = step_results(names, *from_rollup(session, query, names, day_column, queued, span, whole, edges))
            series = None
            if query.breakdown in PERIOD_BREAKDOWNS:
                series = _period_series(session, query, names, day_column, queued, span)
            elif query.breakdown is not None:
                excluded = sorted(query.internal_user_ids)
                s = FunnelStep
                internal = internal_rows(session, query, excluded, whole.span, s.plan_id, s.currency, s.attr_delay) if excluded else []
                series = value_series(session, query, names, day_column, queued, whole, internal, step_results)
            return funnel_response(query, names, steps, series, "rollup")
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
        queued = Queued.read(session, query, *span)
        reached = Counter({step: n for (step,), n in summed(session.connection(), FunnelRollup, query, day_column, whole, ("step",)).items()})
        excluded = sorted(query.internal_user_ids)
        reached.update(row[0] for row in edge_rows(session, query, edges, excluded))
        if excluded:
            reached.subtract(row[0] for row in internal_rows(session, query, excluded, whole.span))
        for sign, rows in ((-1, queued.old), (1, queued.new)):
            for row in rows:
                if row.delay_days <= query.window_days:
                    reached[row.step] += sign
        return [reached[k] for k in range(1, len(step_names(query.by, query.chain)) + 1)]


def signup_periods(query: FunnelQuery) -> list[tuple[dt.date, dt.date, str]]:
    """(first day, last day, label) of each signup week or month of the range, cut to it."""
    periods, first = [], query.start
    while first <= query.end:
        if query.breakdown == "signup_week":
            label, after = zones.week_start(first).isoformat(), zones.week_start(first) + dt.timedelta(days=7)
        else:
            label, after = first.strftime("%Y-%m"), zones.next_month(first)
        last = min(after - dt.timedelta(days=1), query.end)
        periods.append((first, last, label))
        first = last + dt.timedelta(days=1)
    return periods


def _period_series(session: Session, query: FunnelQuery, names, day_column: str, queued: Queued, span) -> list[FunnelSeries]:
    """One funnel per signup week or month from the rollup rows of its days (periods without entrants left out)."""
    tz = zones.zone(query.tz)
    excluded = sorted(query.internal_user_ids)
    internal = internal_rows(session, query, excluded, span) if excluded else []  # read once for every period
    series = []
    for first, last, label in signup_periods(query):
        low, high = zones.day_span(first, last, tz)

        def inside(rows, low=low, high=high):
            return [row for row in rows if low <= row.entry_at < high]

        mine = Queued(queued.ids, inside(queued.old), inside(queued.new))
        own_internal = [row for row in internal if low <= row[2] < high]
        counts, open_short, percentiles = from_rollup(
            session, query, names, day_column, mine, (low, high), Whole(first, last, (low, high)), [], internal=own_internal
        )
        if counts[0]:
            series.append(FunnelSeries(value=label, entrants=counts[0], steps=step_results(names, counts, open_short, percentiles)))
    return series


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
# Entry times stay naive UTC here: the column read as a plain DateTime skips making an aware
# datetime per row (most of this path's time at a year of 1M events); labels convert the few they need.


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def _entrants(session: Session, query: FunnelQuery, queued: Queued, span) -> dict[int, _Entrant]:
    s = FunnelStep
    start_at, end_before = span
    w = query.window_days
    # Reached times only grow along the chain, so the rows within the window are exactly
    # steps 1..reached of each entrant: no ordering or chain walk needed.
    conditions = [s.kind == query.by, s.chain == query.chain, s.entry_at >= start_at, s.entry_at < end_before, s.delay_days <= w]
    if query.internal_user_ids:
        conditions.append(or_(s.user_id.is_(None), s.user_id.not_in(sorted(query.internal_user_ids))))
    entry_at = type_coerce(s.entry_at, DateTime()).label("entry_at")
    rows = session.connection().execute(  # Core: no ORM row processing on a range of entrants
        select(s.entrant_id, s.step, entry_at, s.gap_us, s.plan_id, s.region, s.currency, s.attr_delay)
        .where(*conditions)
    ).all()
    if queued.ids:
        rows = [row for row in rows if row[0] not in queued.ids]
        rows += [
            (r.entrant_id, r.step, _naive(r.entry_at), r.gap_us, r.plan_id, r.region, r.currency, r.attr_delay)
            for r in queued.new if r.delay_days <= w
        ]
    labels = _labels(session, query, rows)
    entrants: dict[int, _Entrant] = {}
    later = []
    for row in rows:
        if row[1] == 1:
            entrant_id, _, entry, _, plan_id, region, currency, attr_delay = row
            entrants[entrant_id] = _Entrant(entry, 1, {}, labels(entry, plan_id, region, currency, attr_delay <= w))
        else:
            later.append(row)
    for entrant_id, step, _, gap_us, *_ in later:
        entrant = entrants[entrant_id]
        if step > entrant.reached:
            entrant.reached = step
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
            return zones.week_start(zones.local_day(entry_at.replace(tzinfo=dt.UTC), tz)).isoformat()
        if kind == "signup_month":
            return zones.local_day(entry_at.replace(tzinfo=dt.UTC), tz).strftime("%Y-%m")
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
    deadline = _naive(query.now - dt.timedelta(days=query.window_days))
    last_step = Counter(e.reached for e in entrants)  # entrants by the last step they reached
    open_last = Counter(e.reached for e in entrants if e.entry_at >= deadline)
    gaps: dict[int, list[int]] = {k: [] for k in range(2, n + 1)}
    for e in entrants:
        for step, gap in e.gaps.items():
            gaps[step].append(gap)
    counts = [sum(last_step[j] for j in range(k, n + 1)) for k in range(1, n + 1)]
    open_short = [0] + [open_last[k - 1] for k in range(2, n + 1)]
    percentiles = [(None, None)]
    for k in range(2, n + 1):
        ordered = sorted(gaps[k])
        percentiles.append((nearest_rank(ordered, 50), nearest_rank(ordered, 90)))
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


ENGINE: FunnelEngine = SqlFunnelEngine()
