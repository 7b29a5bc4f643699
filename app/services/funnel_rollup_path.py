"""The funnel's rollup path: sums of the window and narrow rollups, the range's ends and the
internal users' rows from their entrants, and exact percentiles from the gap histogram.

`funnel_query.SqlFunnelEngine` takes it when the rollups answer the range (see
`docs/funnel.md`, "Which path answers"); its results equal the per-entrant path's.
"""

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import Integer, func, literal, literal_column, or_, select, union_all
from sqlalchemy.orm import Session

from app.models.funnel import (
    STORED_WINDOWS,
    FunnelFineGapWindowRollup,
    FunnelGapRollup,
    FunnelGapWindowRollup,
    FunnelRollup,
    FunnelStep,
    FunnelWindowRollup,
)
from app.services import zones
from app.services.funnel_spec import fine_bucket, fine_buckets_of, fine_gap_bounds, locate_rank

if TYPE_CHECKING:
    from app.services.funnel_query import FunnelQuery, Queued

WINDOW_ROLLUP = {FunnelRollup: FunnelWindowRollup, FunnelGapRollup: FunnelGapWindowRollup}


# Reading a month's 'm' rows costs about as much as two days' 'd' rows (a month holds more keys than a day).
MONTH_COST_IN_DAYS = 2


def period_spans(start: dt.date, end: dt.date, last_day: dt.date | None = None) -> list[tuple[str, dt.date, dt.date, int]]:
    """(period, first day, day after, sign) whose signed sums give the days start..end: whole months from the
    'm' rows; a month the range cuts from its 'd' rows, or from its 'm' rows minus the 'd' rows of the days
    outside the range when those are fewer. Days after `last_day` hold no rows and cost nothing (a range
    ending today takes its month's rows and no day's)."""
    def cost(first: dt.date, after: dt.date) -> int:
        if last_day is not None:
            after = min(after, last_day + dt.timedelta(days=1))
        return max(0, (after - first).days)

    months: list[dt.date] = []
    days: list[tuple[str, dt.date, dt.date, int]] = []
    after_end = end + dt.timedelta(days=1)
    month = start.replace(day=1)
    while month <= end:
        after_month = zones.next_month(month)
        first, after = max(start, month), min(after_end, after_month)
        outside = [(month, first), (after, after_month)]
        if (first, after) == (month, after_month) or MONTH_COST_IN_DAYS + sum(cost(*o) for o in outside) < cost(first, after):
            months.append(month)
            days += [("d", lo, hi, -1) for lo, hi in outside if lo < hi]
        else:
            days.append(("d", first, after, 1))
        month = after_month
    spans = []
    for month in months:  # consecutive months as one span
        if spans and spans[-1][2] == month:
            spans[-1] = ("m", spans[-1][1], zones.next_month(month), 1)
        else:
            spans.append(("m", month, zones.next_month(month), 1))
    return spans + days


@dataclass(frozen=True)
class Whole:
    """The days the rollup rows answer for (of the day column), and the instants they cover."""

    first: dt.date
    last: dt.date
    span: tuple[dt.datetime, dt.datetime]


def window_parts(model, query: "FunnelQuery") -> list[tuple]:
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


def summed(connection, model, query: "FunnelQuery", day_column: str, whole: Whole, group: tuple[str, ...]) -> Counter:
    """The entrants within the window of the rollup rows of the days, by `group`: every period span
    (whole months, the days around them) of each table in one UNION ALL, summed here."""
    parts = []
    for table, counted, window in window_parts(model, query):
        columns = [table.c[name] for name in group]
        day = table.c[day_column]
        for period, first, after, sign in period_spans(whole.first, whole.last, last_data_day(query)):
            parts.append(
                select(literal(sign, Integer).label("sign"), *columns, func.sum(counted).label("n"))
                .where(table.c.kind == query.by, table.c.chain == query.chain, table.c.period == period,
                       day >= first, day < after, *window)
                .group_by(*columns)
            )
    sums = Counter()
    for sign, *key, entrants in connection.execute(parts[0] if len(parts) == 1 else union_all(*parts)):
        sums[tuple(key)] += sign * int(entrants or 0)
    return sums


def last_data_day(query: "FunnelQuery") -> dt.date:
    """The last day, of any zone, that can hold rollup rows: the day of now, a day ahead for zones east of UTC."""
    return query.now.astimezone(dt.UTC).date() + dt.timedelta(days=1)


def from_rollup(
    session: Session, query: "FunnelQuery", names, day_column: str, queued: "Queued", span, whole: Whole, edges: list,
    *, internal: list[tuple] | None = None,
) -> tuple[list[int], list[int], list[tuple]]:
    """(counts, open windows short of each step, percentiles) from the rollup rows of `whole`'s days
    plus the stored entrants entering in `edges`: what `step_results` makes the steps of.
    `internal`: the internal users' rows in `whole` when the caller has read them (`internal_rows`)."""
    r, g = FunnelRollup, FunnelGapRollup
    w = query.window_days
    connection = session.connection()
    reached = Counter({step: n for (step,), n in summed(connection, r, query, day_column, whole, ("step",)).items()})
    histogram: dict[int, Counter] = defaultdict(Counter)  # step -> bucket -> entrants
    fine_adjust = Counter()  # (step, fine bucket) -> entrants to add to the fine rollup's sums
    for (step, bucket), entrants in summed(connection, g, query, day_column, whole, ("step", "bucket")).items():
        histogram[step][bucket] += entrants
    start_at, end_before = span
    s = FunnelStep
    in_range = (s.kind == query.by, s.chain == query.chain, s.entry_at >= start_at, s.entry_at < end_before)
    excluded = sorted(query.internal_user_ids)
    deadline = query.now - dt.timedelta(days=w)
    if edges:
        # The range's ends: their stored rows, as the rollup holds them (queued entrants are mended below).
        end_recent = Counter()
        for step, bucket, entry_at, gap_us in edge_rows(session, query, edges, excluded):
            reached[step] += 1
            if step > 1:
                histogram[step][bucket] += 1
                fine_adjust[(step, fine_bucket(gap_us))] += 1
            if entry_at >= deadline:
                end_recent[step] += 1
    whole_start, whole_end = whole.span
    # Entrants whose window is still open (entered after the deadline), per step reached:
    # whole UTC days after the deadline's day from the day rows, that day from its entrants.
    after_deadline_day = dt.datetime.combine(deadline.astimezone(dt.UTC).date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    recent = Counter()
    # Days that all end before the deadline hold no open window: no read for them.
    parts = [] if whole_end <= deadline else [
        select(table.c.step, func.sum(counted))
        .where(
            table.c.kind == query.by, table.c.chain == query.chain, table.c.period == "d", *window,
            table.c[day_column] >= whole.first, table.c[day_column] <= whole.last, table.c.utc_day >= after_deadline_day.date(),
        )
        .group_by(table.c.step)
        for table, counted, window in window_parts(r, query)
    ]
    for step, entrants in connection.execute(parts[0] if len(parts) == 1 else union_all(*parts)) if parts else []:
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
        for step, bucket, entry_at, gap_us in internal if internal is not None else internal_rows(session, query, excluded, whole.span):
            reached[step] -= 1
            if step > 1:
                histogram[step][bucket] -= 1
                fine_adjust[(step, fine_bucket(gap_us))] -= 1
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
                fine_adjust[(row.step, fine_bucket(row.gap_us))] += sign
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
    # The fine rollup keeps the stored windows only.
    fine = partial(fine_histograms, connection, query, day_column, whole, adjust=fine_adjust) if w in STORED_WINDOWS else None
    gaps = ranked_gaps(session, query, asked, [*in_range, *skip], added, fine)
    percentiles = [(None, None)] + [(gaps[2 * i], gaps[2 * i + 1]) for i in range(n - 1)]
    return counts, open_short, percentiles


def edge_rows(session: Session, query: "FunnelQuery", edges, excluded: list[int]) -> list[tuple[int, int, dt.datetime, int]]:
    """(step, bucket, entry_at, gap_us) of the stored rows entering in `edges` (the range's ends) within the window,
    internal users left out: one index range per end, in one UNION ALL."""
    s = FunnelStep
    parts = []
    for lo, hi in edges:
        conditions = [s.kind == query.by, s.chain == query.chain, s.entry_at >= lo, s.entry_at < hi, s.delay_days <= query.window_days]
        if excluded:
            conditions.append(or_(s.user_id.is_(None), s.user_id.not_in(excluded)))
        parts.append(select(s.step, s.bucket, s.entry_at, s.gap_us).where(*conditions))
    if not parts:
        return []
    return list(session.connection().execute(parts[0] if len(parts) == 1 else union_all(*parts)))


def internal_rows(session: Session, query: "FunnelQuery", excluded: list[int], span, *extra) -> list[tuple]:
    """(step, bucket, entry_at, gap_us, *extra columns) of the internal users' rows entering in `span` within the window.

    Read by user id alone (a few users' rows), then cut here: with the kind and the time range
    in the statement too, SQLite's planner walks the range's rows instead of the user index."""
    s = FunnelStep
    rows = session.connection().execute(
        select(s.kind, s.chain, s.delay_days, s.step, s.bucket, s.entry_at, s.gap_us, *extra).where(s.user_id.in_(excluded))
    )
    return [
        tuple(row[3:]) for row in rows
        if row.kind == query.by and row.chain == query.chain and row.delay_days <= query.window_days and span[0] <= row.entry_at < span[1]
    ]


def fine_histograms(connection, query: "FunnelQuery", day_column: str, whole: Whole, targets: set[tuple[int, int]],
                    adjust: Counter) -> dict[tuple[int, int], Counter]:
    """Per (step, bucket) of `targets`: entrants by fine bucket within the (stored) window, from the fine
    rollup rows of `whole`'s days plus `adjust` (the ends, internal users and queued entrants, as for the buckets)."""
    if not targets:
        return {}
    table = FunnelFineGapWindowRollup.__table__
    counted = table.c[f"within_{query.window_days}"]
    fines: dict[int, list[int]] = defaultdict(list)  # step -> its targets' fine buckets
    for step, b in sorted(targets):
        fines[step] += fine_buckets_of(b)
    # Per step an IN list, not a range: each fine bucket is a seek, then the range's days of it.
    parts = [
        select(literal(sign, Integer).label("sign"), table.c.step, table.c.fine, func.sum(counted))
        .where(table.c.kind == query.by, table.c.chain == query.chain, table.c.period == period, table.c.step == step,
               table.c.fine.in_(sorted(wanted)), table.c[day_column] >= first, table.c[day_column] < after)
        .group_by(table.c.step, table.c.fine)
        for period, first, after, sign in period_spans(whole.first, whole.last, last_data_day(query))
        for step, wanted in sorted(fines.items())
    ]
    sums = Counter()
    for sign, step, fine, entrants in connection.execute(parts[0] if len(parts) == 1 else union_all(*parts)):
        sums[(step, fine)] += sign * int(entrants or 0)
    result = {}
    for step, b in targets:
        result[(step, b)] = Counter({f: sums[(step, f)] + adjust[(step, f)] for f in fine_buckets_of(b)})
    return result


def ranked_gaps(session, query, asked: list[tuple[int, Counter, int, int]], conditions, added, fine=None) -> list[int | None]:
    """The exact nearest-rank gap of each (step, bucket histogram, entrants, percent): the histogram
    finds the bucket, the fine rollup (`fine`, when the window has one) the eighth of it, and its rows
    in the range give the value; every read in one round trip."""
    s = FunnelStep
    # (step, bucket, rank within the bucket) or None
    located = [(step, *locate_rank(buckets, n, percent)) if n else None for step, buckets, n, percent in asked]
    fine_counts = fine({(step, bucket) for step, bucket, _ in filter(None, located)}) if fine else {}
    plans, parts = [], []
    for place in located:
        if place is None:
            plans.append(None)
            continue
        step, bucket, rank = place
        gap_filter, low, high = [], None, None
        counts = fine_counts.get((step, bucket), Counter())
        left = rank
        for f in sorted(counts):
            if 0 < left <= counts[f]:
                rank, (low, high) = left, fine_gap_bounds(f)
                gap_filter = [s.gap_us >= low] + ([s.gap_us < high] if high is not None else [])
                break
            left -= counts[f]
        new_gaps = sorted(g for g in added.get((step, bucket), []) if low is None or (g >= low and (high is None or g < high)))
        # The stored gaps (queued entrants left out) hold all but len(new_gaps) of the ranks up
        # to `rank`: the database sorts the bucket (or its eighth) and hands back the few around it.
        skipped = max(0, rank - 1 - len(new_gaps))
        plans.append((rank, skipped, new_gaps, len(parts)))
        ranked = (
            select(s.gap_us).where(*conditions, s.step == step, s.bucket == bucket, *gap_filter, s.delay_days <= query.window_days)
            .order_by(s.gap_us).limit(rank - skipped).offset(skipped).subquery()
        )
        parts.append(select(literal(len(parts), Integer).label("part"), ranked.c.gap_us))
    stored: dict[int, list[int]] = defaultdict(list)
    if parts:
        for part, gap in session.connection().execute(parts[0] if len(parts) == 1 else union_all(*parts)):
            stored[part].append(gap)
    return [None if plan is None else rank_value(*plan[:3], sorted(stored[plan[3]])) for plan in plans]


def rank_value(rank: int, skipped: int, new_gaps: list[int], stored: list[int]) -> int | None:
    """The value at `rank` among the stored gaps from rank `skipped` + 1 on and the queued entrants' new gaps."""
    # Every value below stored[0] has a rank under `rank`, so the answer is one of these.
    for value in sorted(stored + new_gaps):
        if skipped and stored and value < stored[0]:
            continue
        if skipped + sum(v <= value for v in stored) + sum(v <= value for v in new_gaps) >= rank:
            return value
    return None
