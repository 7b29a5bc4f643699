"""Distinct users per event type over a range of days.

Distinct counts do not add up across days, so the rollups cannot answer them.
Ranges with few events are counted exactly (COUNT(DISTINCT) over the covering index).
Bigger ranges merge cached HyperLogLog sketches: one per closed calendar month and
type, one per remaining day and type. Each cached sketch carries the number of events
it was built from; when the rollup's count for that day (or month) differs, the sketch
is stale and is rebuilt from the events, so a late or new event is never missed.
`user_signup` is exact on both paths: one signup per user (its dedupe key), so its
distinct users are its event count.
"""

import datetime as dt
from collections import defaultdict

import numpy as np
from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import utc_now
from app.models.analytics import (
    AnalyticsDailySketch,
    AnalyticsDailyTotal,
    AnalyticsEvent,
    AnalyticsMonthlySketch,
    EventType,
)
from app.services import hll


def count_unique_users(
    session: Session, days, event_types: list[str], counts: dict[str, int], *, today: dt.date | None = None
) -> tuple[dict[str, int], bool]:
    """Distinct users per type, and whether the figures are approximate."""
    events_in_range = sum(counts.get(t, 0) for t in event_types)
    if events_in_range <= get_settings().analytics_exact_distinct_max_events:
        return exact_unique_users(session, days, event_types), False
    sketched = [t for t in event_types if t != EventType.USER_SIGNUP]
    estimates = sketched_unique_users(session, days, sketched, today=today or utc_now().date())
    unique = {t: counts.get(t, 0) if t == EventType.USER_SIGNUP else estimates[t] for t in event_types}
    return unique, bool(sketched)


def exact_unique_users(session: Session, days, event_types: list[str]) -> dict[str, int]:
    """COUNT(DISTINCT user_id) per type straight from the events."""
    e = AnalyticsEvent
    rows = session.execute(
        select(e.event_type, func.count(func.distinct(e.user_id)))
        .where(e.event_type.in_(event_types), e.occurred_at >= days.start_at, e.occurred_at < days.end_before)
        .group_by(e.event_type)
    ).all()
    found = {event_type: int(n) for event_type, n in rows}
    return {t: found.get(t, 0) for t in event_types}


def sketched_unique_users(session: Session, days, event_types: list[str], *, today: dt.date) -> dict[str, int]:
    """HLL estimate per type from the cached monthly and daily sketches (rebuilt when stale)."""
    if not event_types:
        return {}
    months = _closed_months(days.start, days.end, today)
    month_counts, counts = _range_counts(session, days.start, days.end, months, event_types)
    per_type: dict[str, list[np.ndarray | bytes]] = defaultdict(list)
    for (_, event_type), regs in _monthly_registers(session, months, event_types, month_counts).items():
        per_type[event_type].append(regs)
    covered = set(months)
    edge_days = [d for d in days.each_day() if d.replace(day=1) not in covered]
    for (_, event_type), regs in _daily_registers(session, edge_days, event_types, counts).items():
        per_type[event_type].append(regs)
    return {t: hll.estimate(hll.union(per_type[t])) for t in event_types}


def refresh_sketches(session: Session, start: dt.date, end: dt.date, *, today: dt.date | None = None) -> None:
    """Build every missing or stale sketch between two days (after a bulk load, say)."""
    types = [t.value for t in EventType if t != EventType.USER_SIGNUP]
    months = _closed_months(start, end, today or utc_now().date())
    _monthly_registers(session, months, types, _month_counts(session, months, types))
    covered = set(months)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    remaining = [d for d in days if d.replace(day=1) not in covered]
    if remaining:
        _daily_registers(session, remaining, types, _daily_counts(session, remaining[0], remaining[-1], types))


def _daily_counts(session: Session, start: dt.date, end: dt.date, types: list[str]) -> dict[tuple[dt.date, str], int]:
    t = AnalyticsDailyTotal
    rows = session.connection().execute(
        select(t.day, t.event_type, func.sum(t.event_count))
        .where(t.day >= start, t.day <= end, t.event_type.in_(types))
        .group_by(t.day, t.event_type)
    ).all()
    return {(_as_date(day), event_type): int(n) for day, event_type, n in rows if n}


def _range_counts(session: Session, start: dt.date, end: dt.date, months: list[dt.date], types: list[str]):
    """Events per (closed month, type) and per (other day, type), in one query (one round trip)."""
    if not months:
        return {}, _daily_counts(session, start, end, types)
    t = AnalyticsDailyTotal
    month_ends = [_next_month(m) for m in months]
    bucket = case((t.day < months[0], -1), *((t.day < e, i) for i, e in enumerate(month_ends)), else_=-1)
    edge_day = case((bucket == -1, t.day), else_=None)
    rows = session.connection().execute(
        select(bucket, edge_day, t.event_type, func.sum(t.event_count))
        .where(t.day >= start, t.day <= end, t.event_type.in_(types))
        .group_by(bucket, edge_day, t.event_type)
    ).all()
    month_counts, day_counts = {}, {}
    for index, day, event_type, n in rows:
        if not n:
            continue
        if int(index) >= 0:
            month_counts[(months[int(index)], event_type)] = int(n)
        else:
            day_counts[(_as_date(day), event_type)] = int(n)
    return month_counts, day_counts


def _month_counts(session: Session, months: list[dt.date], types: list[str]) -> dict[tuple[dt.date, str], int]:
    """Events per (closed month, type) in one query: a few dozen rows instead of a year of days."""
    if not months:
        return {}
    t = AnalyticsDailyTotal
    ends = [_next_month(m) for m in months]
    # Bucket number = index of the month; portable where month arithmetic on dates is not.
    bucket = case(*((t.day < end, i) for i, end in enumerate(ends)), else_=len(months))
    rows = session.connection().execute(
        select(bucket, t.event_type, func.sum(t.event_count))
        .where(t.day >= months[0], t.day < ends[-1], t.event_type.in_(types))
        .group_by(bucket, t.event_type)
    ).all()
    return {(months[int(i)], event_type): int(n) for i, event_type, n in rows if n}


def _closed_months(start: dt.date, end: dt.date, today: dt.date) -> list[dt.date]:
    """First days of the months wholly inside start..end that ended before today."""
    months = []
    month = start if start.day == 1 else _next_month(start)
    while _next_month(month) - dt.timedelta(days=1) <= end and _next_month(month) <= today:
        months.append(month)
        month = _next_month(month)
    return months


def _monthly_registers(session, months, types, expected) -> dict[tuple[dt.date, str], np.ndarray | bytes]:
    if not expected:
        return {}
    s = AnalyticsMonthlySketch
    stored = {
        (_as_date(month), event_type): (n, blob)
        for month, event_type, n, blob in session.connection().execute(
            select(s.month, s.event_type, s.event_count, s.registers).where(s.month.in_(months), s.event_type.in_(types))
        )
    }
    result = {key: stored[key][1] for key, n in expected.items() if key in stored and stored[key][0] == n}
    stale = [key for key in expected if key not in result]
    if stale:
        stale_months = sorted({month for month, _ in stale})
        stale_types = sorted({t for _, t in stale})
        parts: dict[tuple[dt.date, str], list[np.ndarray | bytes]] = defaultdict(list)
        for month in stale_months:
            last = _next_month(month) - dt.timedelta(days=1)
            month_days = [month + dt.timedelta(days=i) for i in range(last.day)]
            counts = _daily_counts(session, month, last, stale_types)
            for (day, event_type), regs in _daily_registers(session, month_days, stale_types, counts).items():
                parts[(month, event_type)].append(regs)
        built = {key: (expected[key], hll.union(parts[key])) for key in stale}
        _store_many(session, s, s.month, built)
        result.update({key: regs for key, (_, regs) in built.items()})
    return result


def _daily_registers(session, days, types, counts) -> dict[tuple[dt.date, str], np.ndarray | bytes]:
    wanted = {(d, t): counts[(d, t)] for d in days for t in types if counts.get((d, t))}
    if not wanted:
        return {}
    s = AnalyticsDailySketch
    wanted_days = sorted({d for d, _ in wanted})
    stored = []
    for i in range(0, len(wanted_days), 400):
        stored += session.connection().execute(
            select(s.day, s.event_type, s.event_count, s.registers).where(
                s.day.in_(wanted_days[i : i + 400]), s.event_type.in_(types)
            )
        ).all()
    result = {}
    for day, event_type, n, blob in stored:
        key = (_as_date(day), event_type)
        if wanted.get(key) == n:
            result[key] = blob
    stale: dict[dt.date, list[str]] = defaultdict(list)
    for day, event_type in wanted.keys() - result.keys():
        stale[day].append(event_type)
    built = {}
    for day in sorted(stale):
        for event_type, (n, regs) in _build_day(session, day, sorted(stale[day])).items():
            built[(day, event_type)] = (n, regs)
    _store_many(session, s, s.day, built)
    result.update({key: regs for key, (_, regs) in built.items()})
    return result


def _build_day(session: Session, day: dt.date, types: list[str]) -> dict[str, tuple[int, np.ndarray]]:
    """Registers of one day's users per type, with the number of events they came from."""
    e = AnalyticsEvent
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    rows = session.execute(
        select(e.event_type, e.user_id).where(
            e.event_type.in_(types), e.occurred_at >= start, e.occurred_at < start + dt.timedelta(days=1)
        )
    ).all()
    user_ids: dict[str, list[int]] = {t: [] for t in types}
    event_counts = dict.fromkeys(types, 0)
    for event_type, user_id in rows:
        event_counts[event_type] += 1
        if user_id is not None:
            user_ids[event_type].append(user_id)
    return {t: (event_counts[t], hll.registers(np.array(user_ids[t], dtype=np.int64))) for t in types}


def _store_many(session: Session, table, period_column, built: dict[tuple[dt.date, str], tuple[int, np.ndarray]]) -> None:
    """Replace the cached sketches of these (period, type) keys in one go."""
    if not built:
        return
    by_type: dict[str, list[dt.date]] = defaultdict(list)
    for period, event_type in built:
        by_type[event_type].append(period)
    rows = [
        {period_column.key: period, "event_type": event_type, "event_count": n, "registers": hll.to_bytes(regs)}
        for (period, event_type), (n, regs) in sorted(built.items())
    ]
    # A cache write: if a concurrent request stored these sketches first, keep theirs.
    try:
        with session.begin_nested():
            for event_type, periods in by_type.items():
                for i in range(0, len(periods), 500):
                    session.execute(delete(table).where(table.event_type == event_type, period_column.in_(periods[i : i + 500])))
            session.execute(insert(table), rows)
    except IntegrityError:
        pass


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _as_date(value) -> dt.date:
    # SQLite hands back DATE columns from aggregates as text.
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
