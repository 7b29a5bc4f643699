"""Funnel events: `record_event` and the admin reports built on the daily rollups.

Every report reads the rollup tables that `record_event` keeps in step with the
events inside the same transaction, so a report over a year reads a few thousand
rollup rows instead of millions of events, and still equals the raw events exactly.
"""

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import and_, case, func, or_, select, union_all
from sqlalchemy.orm import Session

from app.db import utc_now
from app.models.analytics import (
    AMOUNT_EVENTS,
    FUNNEL,
    AnalyticsDailyPlan,
    AnalyticsDailyTotal,
    AnalyticsEvent,
    AnalyticsMonthlyPlan,
    EventType,
)
from app.models.plan import Plan
from app.services import sqlcompat
from app.services.unique_users import count_unique_users

MAX_RANGE_DAYS = 365
CONVERSIONS = {
    "signup_to_checkout": (EventType.USER_SIGNUP, EventType.CHECKOUT_STARTED),
    "checkout_to_payment": (EventType.CHECKOUT_STARTED, EventType.PAYMENT_SUCCEEDED),
    "payment_to_activation": (EventType.PAYMENT_SUCCEEDED, EventType.ESIM_ACTIVATED),
    "signup_to_activation": (EventType.USER_SIGNUP, EventType.ESIM_ACTIVATED),
}


def record_event(
    session: Session,
    event_type: EventType,
    *,
    user_id: int | None = None,
    order_id: int | None = None,
    plan_id: int | None = None,
    amount_minor_units: int | None = None,
    currency: str | None = None,
    metadata: dict[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
    fact_id: str | None = None,
) -> AnalyticsEvent:
    """Stage one event and its rollup increments in the caller's transaction.

    `payment_failed` and `payment_refunded` happen more than once per order: `fact_id`
    (the failed attempt's or the refund's provider id) makes each one's dedupe key.
    """
    event_type = EventType(event_type)
    if event_type in PER_FACT_EVENTS:
        if order_id is None or not fact_id:
            raise ValueError(f"{event_type} needs order_id and fact_id")
        dedupe_key = fact_dedupe_key(event_type, fact_id)
    elif event_type is EventType.USER_SIGNUP:
        if user_id is None:
            raise ValueError("user_signup needs user_id")
        dedupe_key = f"{event_type}:user:{user_id}"
    else:
        if order_id is None:
            raise ValueError(f"{event_type} needs order_id")
        dedupe_key = f"{event_type}:order:{order_id}"
    occurred_at = occurred_at or utc_now()
    event = AnalyticsEvent(
        event_type=event_type.value,
        user_id=user_id,
        order_id=order_id,
        plan_id=plan_id,
        amount_minor_units=amount_minor_units,
        currency=currency.upper() if currency else None,
        event_metadata=metadata or {},
        occurred_at=occurred_at,
        dedupe_key=dedupe_key,
    )
    session.add(event)
    _add_to_rollups(session, event)
    return event


PER_FACT_EVENTS = (EventType.PAYMENT_FAILED, EventType.PAYMENT_REFUNDED)
DEDUPE_KEY_LENGTH = 80


def fact_dedupe_key(event_type: EventType, fact_id: str) -> str:
    """`payment_refunded:re_123`; a provider id too long for the column is replaced by its SHA-256."""
    key = f"{event_type}:{fact_id}"
    if len(key) <= DEDUPE_KEY_LENGTH:
        return key
    return f"{event_type}:sha256:{hashlib.sha256(fact_id.encode()).hexdigest()[:48]}"


def _add_to_rollups(session: Session, event: AnalyticsEvent) -> None:
    day = event.occurred_at.astimezone(dt.UTC).date()
    # Refund amounts go to the same column: per type it is "the amounts of this type".
    revenue = (event.amount_minor_units or 0) if event.event_type in AMOUNT_EVENTS else 0
    sqlcompat.add_counts(
        session,
        AnalyticsDailyTotal.__table__,
        {"day": day, "event_type": event.event_type, "currency": event.currency or ""},
        {"event_count": 1, "revenue_minor_units": revenue},
    )
    if event.event_type == EventType.PAYMENT_SUCCEEDED and event.plan_id is not None:
        increments = {"payments": 1, "revenue_minor_units": revenue}
        keys = {"plan_id": event.plan_id, "currency": event.currency or ""}
        sqlcompat.add_counts(session, AnalyticsDailyPlan.__table__, {"day": day, **keys}, increments)
        sqlcompat.add_counts(
            session, AnalyticsMonthlyPlan.__table__, {"month": day.replace(day=1), **keys}, increments
        )


@dataclass(frozen=True)
class DayRange:
    """Whole UTC days, both ends included."""

    start: dt.date
    end: dt.date
    clamped: bool = False

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "DayRange":
        end = self.start - dt.timedelta(days=1)
        return DayRange(end - dt.timedelta(days=self.days - 1), end)

    def each_day(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]

    @property
    def start_at(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), tzinfo=dt.UTC)

    @property
    def end_before(self) -> dt.datetime:
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def resolve_range(
    start: dt.date | None, end: dt.date | None, *, default_days: int, today: dt.date
) -> DayRange:
    """Apply the defaults and the 365-day clamp; the caller has checked start <= end."""
    end = end or (max(today, start) if start else today)
    start = start or end - dt.timedelta(days=default_days - 1)
    if start > end:
        raise ValueError("start_date is after end_date")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        return DayRange(end - dt.timedelta(days=MAX_RANGE_DAYS - 1), end, clamped=True)
    return DayRange(start, end)


def _daily_pivot(session: Session, days: DayRange, types: list[str]) -> tuple[list[str], list]:
    """One row per day with events: day, a count per type, then revenue per currency (None: no row)."""
    t = AnalyticsDailyTotal
    in_range = (t.day >= days.start, t.day <= days.end)
    paid = t.event_type == EventType.PAYMENT_SUCCEEDED
    connection = session.connection()  # Core: no ORM row processing on ≈ a year of rows
    currencies = sorted(connection.execute(select(t.currency).distinct().where(*in_range, paid, t.currency != "")).scalars())
    # One row per day instead of one per (day, type, currency): a fifth of the values to
    # decode, which is what a 365-day series costs on MariaDB's pure-Python driver.
    counts = [func.sum(case((t.event_type == event_type, t.event_count), else_=0)) for event_type in types]
    revenue = [func.sum(case((and_(paid, t.currency == currency), t.revenue_minor_units))) for currency in currencies]
    needed = sorted({*types, EventType.PAYMENT_SUCCEEDED.value})
    rows = connection.execute(
        select(t.day, *counts, *revenue).where(*in_range, t.event_type.in_(needed)).group_by(t.day)
    ).all()
    return currencies, rows


def _totals(session: Session, days: DayRange) -> tuple[dict[str, int], dict[str, int]]:
    t = AnalyticsDailyTotal
    # Rollup rows are written by Core upserts, never pending in the session: no autoflush needed.
    rows = session.connection().execute(
        select(t.event_type, t.currency, func.sum(t.event_count), func.sum(t.revenue_minor_units))
        .where(t.day >= days.start, t.day <= days.end)
        .group_by(t.event_type, t.currency)
    ).all()
    counts = {e.value: 0 for e in FUNNEL}
    revenue: dict[str, int] = {}
    for event_type, currency, count, amount in rows:
        if event_type in counts:
            counts[event_type] += int(count)
        if event_type == EventType.PAYMENT_SUCCEEDED and currency:
            revenue[currency] = revenue.get(currency, 0) + int(amount)
    return counts, dict(sorted(revenue.items()))


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def top_plans(session: Session, days: DayRange, limit: int = 10) -> list[dict]:
    """Plans by revenue: whole months from the monthly rollup, the edge days from the daily one."""
    first_full = days.start if days.start.day == 1 else _next_month(days.start)
    after_last_full = _next_month(days.end).replace(day=1) if _is_month_end(days.end) else days.end.replace(day=1)
    parts = []
    d, m = AnalyticsDailyPlan, AnalyticsMonthlyPlan
    daily_cols = (d.plan_id, d.currency, d.payments, d.revenue_minor_units)
    if first_full < after_last_full:
        parts.append(
            select(m.plan_id, m.currency, m.payments, m.revenue_minor_units).where(
                m.month >= first_full, m.month < after_last_full
            )
        )
        edges = or_(
            and_(d.day >= days.start, d.day < first_full),
            and_(d.day >= after_last_full, d.day <= days.end),
        )
    else:
        edges = and_(d.day >= days.start, d.day <= days.end)
    parts.append(select(*daily_cols).where(edges))
    rows = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    revenue = func.sum(rows.c.revenue_minor_units).label("revenue")
    payments = func.sum(rows.c.payments).label("payments")
    ranked = (
        select(rows.c.plan_id, rows.c.currency, revenue, payments)
        .group_by(rows.c.plan_id, rows.c.currency)
        .order_by(revenue.desc(), payments.desc(), rows.c.plan_id, rows.c.currency)
        .limit(limit)
        .subquery()
    )
    result = session.execute(
        select(ranked, Plan.name)
        .join(Plan, Plan.id == ranked.c.plan_id, isouter=True)
        .order_by(ranked.c.revenue.desc(), ranked.c.payments.desc(), ranked.c.plan_id, ranked.c.currency)
    ).all()
    return [
        {
            "plan_id": row.plan_id,
            "plan_name": row.name,
            "currency": row.currency,
            "revenue_minor_units": int(row.revenue),
            "payments": int(row.payments),
        }
        for row in result
    ]


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _is_month_end(day: dt.date) -> bool:
    return (day + dt.timedelta(days=1)).day == 1


def overview(session: Session, days: DayRange, event_types: list[str] | None = None) -> dict:
    """Funnel counts, unique users, conversions, revenue, the previous period and top plans."""
    shown = event_types or [e.value for e in FUNNEL]
    counts, revenue = _totals(session, days)
    previous = days.previous()
    previous_counts, previous_revenue = _totals(session, previous)
    unique, approximate = count_unique_users(session, days, shown, counts)
    body = {
        "start_date": days.start.isoformat(),
        "end_date": days.end.isoformat(),
        "clamped": days.clamped,
        "counts": {k: counts[k] for k in shown},
        "unique_users": {k: unique[k] for k in shown},
        "conversion": {name: _ratio(counts[b], counts[a]) for name, (a, b) in CONVERSIONS.items()},
        "revenue": revenue,
        "previous": {
            "start_date": previous.start.isoformat(),
            "end_date": previous.end.isoformat(),
            "counts": {k: previous_counts[k] for k in shown},
            "revenue": previous_revenue,
        },
        "top_plans": top_plans(session, days),
    }
    if approximate:
        body["unique_users_approximate"] = True
    return body


def timeseries(session: Session, days: DayRange, event_types: list[str] | None = None) -> dict:
    """One bucket per UTC day with event counts and revenue per currency."""
    shown = event_types or [e.value for e in FUNNEL]
    buckets = {day: {"date": day.isoformat(), "counts": dict.fromkeys(shown, 0), "revenue": {}} for day in days.each_day()}
    currencies, rows = _daily_pivot(session, days, shown)
    for day, *values in rows:
        bucket = buckets[_as_date(day)]
        bucket["counts"] = {event_type: int(n) for event_type, n in zip(shown, values, strict=False)}
        bucket["revenue"] = {c: int(v) for c, v in zip(currencies, values[len(shown):], strict=True) if v is not None}
    return {
        "start_date": days.start.isoformat(),
        "end_date": days.end.isoformat(),
        "clamped": days.clamped,
        "event_types": shown,
        "buckets": list(buckets.values()),
    }


def _as_date(value) -> dt.date:
    # SQLite hands back DATE columns from aggregates as text.
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def first_event_day(session: Session) -> dt.date | None:
    t = AnalyticsDailyTotal
    # ORDER BY the key's first column + LIMIT 1 stops at the first row; MIN() with this
    # WHERE makes MariaDB scan the whole table.
    value = session.connection().scalar(select(t.day).where(t.event_count > 0).order_by(t.day).limit(1))
    return _as_date(value) if value is not None else None


def projections(session: Session, *, window_days: int, horizon_days: int, currency: str, as_of: dt.date) -> dict:
    """Moving-average forecast of revenue (in one currency) and signups."""
    history_range = DayRange(as_of - dt.timedelta(days=window_days), as_of - dt.timedelta(days=1))
    earlier_range = history_range.previous()
    t = AnalyticsDailyTotal
    is_signup = t.event_type == EventType.USER_SIGNUP
    is_revenue = and_(t.event_type == EventType.PAYMENT_SUCCEEDED, t.currency == currency)
    # One row per day (signups, revenue) through Core: what MariaDB's driver decodes is the cost here.
    rows = session.connection().execute(
        select(
            t.day,
            func.sum(case((is_signup, t.event_count), else_=0)),
            func.sum(case((is_revenue, t.revenue_minor_units), else_=0)),
        )
        .where(t.day >= earlier_range.start, t.day <= history_range.end, or_(is_signup, is_revenue))
        .group_by(t.day)
    ).all()
    revenue_by_day: dict[dt.date, int] = {}
    signups_by_day: dict[dt.date, int] = {}
    for day, signups, amount in rows:
        day = _as_date(day)
        signups_by_day[day] = int(signups)
        revenue_by_day[day] = int(amount)
    history = [
        {"date": d.isoformat(), "revenue_minor_units": revenue_by_day.get(d, 0), "signups": signups_by_day.get(d, 0)}
        for d in history_range.each_day()
    ]
    body = {
        "method": "moving_average",
        "window_days": window_days,
        "horizon_days": horizon_days,
        "currency": currency,
        "as_of": as_of.isoformat(),
        "history": history,
        "forecast": [],
        "projected_revenue_minor_units": 0,
        "projected_signups": 0,
        "growth_rate": None,
        "note": None,
    }
    first_day = first_event_day(session)
    if first_day is None or first_day > history_range.start:
        body["note"] = "Not enough data"
        return body
    history_revenue = sum(h["revenue_minor_units"] for h in history)
    mean_revenue = int((Decimal(history_revenue) / window_days).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    mean_signups = sum(h["signups"] for h in history) / window_days
    forecast_days = [as_of + dt.timedelta(days=i) for i in range(horizon_days)]
    body["forecast"] = [
        {"date": d.isoformat(), "revenue_minor_units": mean_revenue, "signups": mean_signups} for d in forecast_days
    ]
    body["projected_revenue_minor_units"] = sum(f["revenue_minor_units"] for f in body["forecast"])
    body["projected_signups"] = sum(f["signups"] for f in body["forecast"])
    earlier_revenue = sum(revenue_by_day.get(d, 0) for d in earlier_range.each_day())
    if earlier_revenue and first_day <= earlier_range.start:
        body["growth_rate"] = history_revenue / earlier_revenue - 1
    return body
