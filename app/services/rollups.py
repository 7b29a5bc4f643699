"""Recompute the analytics rollups from the raw events (repair, and the check of bulk loads)."""

import datetime as dt
from collections import defaultdict

from sqlalchemy import and_, case, delete, func, insert, select
from sqlalchemy.orm import Session

from app.models.analytics import (
    AnalyticsDailyPlan,
    AnalyticsDailyTotal,
    AnalyticsEvent,
    AnalyticsMonthlyPlan,
    AMOUNT_EVENTS,
    EventType,
)
from app.services import sqlcompat

ROLLUP_TABLES = (AnalyticsDailyTotal, AnalyticsDailyPlan, AnalyticsMonthlyPlan)


def rebuild_rollups(session: Session) -> dict[str, int]:
    """Replace every rollup row by a GROUP BY over analytics_events; returns rows per table."""
    e = AnalyticsEvent
    day = sqlcompat.day_of(session, e.occurred_at)
    currency = func.coalesce(e.currency, "")
    is_payment = e.event_type == EventType.PAYMENT_SUCCEEDED
    has_amount = e.event_type.in_([t.value for t in AMOUNT_EVENTS])
    revenue = func.sum(case((has_amount, func.coalesce(e.amount_minor_units, 0)), else_=0))
    for table in ROLLUP_TABLES:
        session.execute(delete(table))
    session.execute(
        insert(AnalyticsDailyTotal).from_select(
            ["day", "event_type", "currency", "event_count", "revenue_minor_units"],
            select(day, e.event_type, currency, func.count(), revenue).group_by(day, e.event_type, currency),
        )
    )
    session.execute(
        insert(AnalyticsDailyPlan).from_select(
            ["day", "plan_id", "currency", "payments", "revenue_minor_units"],
            select(day, e.plan_id, currency, func.count(), func.sum(func.coalesce(e.amount_minor_units, 0)))
            .where(and_(is_payment, e.plan_id.is_not(None)))
            .group_by(day, e.plan_id, currency),
        )
    )
    # Months from the daily plan rows: bucketing a datetime by month differs on every
    # database, and the daily table is small next to the events.
    d = AnalyticsDailyPlan
    months: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for row_day, plan_id, row_currency, payments, amount in session.execute(
        select(d.day, d.plan_id, d.currency, d.payments, d.revenue_minor_units)
    ):
        totals = months[(as_date(row_day).replace(day=1), plan_id, row_currency)]
        totals[0] += payments
        totals[1] += amount
    if months:
        session.execute(
            insert(AnalyticsMonthlyPlan),
            [
                {"month": m, "plan_id": p, "currency": c, "payments": n, "revenue_minor_units": r}
                for (m, p, c), (n, r) in sorted(months.items())
            ],
        )
    return {table.__tablename__: session.scalar(select(func.count()).select_from(table)) for table in ROLLUP_TABLES}


def rollup_rows(session: Session) -> dict[str, list[tuple]]:
    """Every rollup row, sorted, for comparisons."""
    result = {}
    for table in ROLLUP_TABLES:
        columns = list(table.__table__.c)
        rows = session.execute(select(*columns).order_by(*columns[:3])).all()
        result[table.__tablename__] = [(as_date(r[0]), *r[1:3], int(r[3]), int(r[4])) for r in rows]
    return result


def as_date(value) -> dt.date:
    """A DATE column's value as a date (SQLite may return text)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
