"""Funnel events: `record_event`, and the admin reports built from a report engine.

`record_event` stages the event and its rollup increments in the caller's transaction.
The reports ask a `ReportEngine` (`app.services.report_engine`) for typed pieces
(totals, daily rows, exact unique users, top plans) and shape the contract's answers.
"""

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.db import utc_now
from app.models.analytics import FUNNEL, AnalyticsEvent, EventType
from app.schemas.analytics import (
    Bucket,
    Conversion,
    Overview,
    PreviousPeriod,
    Projection,
    Timeseries,
    TopPlan,
)
from app.services import funnel_query, funnel_store, rollup_repo, zones
from app.services import projections as projection_service
from app.services.dates import DayRange, resolve_range  # noqa: F401  (the reports' range type, re-exported)
from app.services.events_engine import EventsEngine, UserFilter, add_totals, subtract_totals
from app.services.excluded_users import FewUsersEngine, SubtractingEngine
from app.services.clickhouse_engine import ClickHouseEngine
from app.services.clickhouse_zones import ClickHouseZoneEngine
from app.services.report_engine import ReportEngine, SqlEngine
from app.services.span_engine import SpanEngine

CONVERSIONS = {
    "signup_to_checkout": (EventType.USER_SIGNUP, EventType.CHECKOUT_STARTED),
    "checkout_to_payment": (EventType.CHECKOUT_STARTED, EventType.PAYMENT_SUCCEEDED),
    "payment_to_activation": (EventType.PAYMENT_SUCCEEDED, EventType.ESIM_ACTIVATED),
    "signup_to_activation": (EventType.USER_SIGNUP, EventType.ESIM_ACTIVATED),
}
ALL_TYPES = [e.value for e in FUNNEL]
# The overview's `conversion`: the ordered funnel of people, as the funnel report's defaults count it.
CONVERSION_WINDOW_DAYS = 14
CONVERSION_BASIS = f"ordered_funnel_by_user_window_{CONVERSION_WINDOW_DAYS}d"
PER_FACT_EVENTS = (EventType.PAYMENT_FAILED, EventType.PAYMENT_REFUNDED)
DEDUPE_KEY_LENGTH = 80


def fact_dedupe_key(event_type: EventType, fact_id: str) -> str:
    """`payment_refunded:re_123`; a provider id too long for the column is replaced by its SHA-256."""
    key = f"{event_type}:{fact_id}"
    if len(key) <= DEDUPE_KEY_LENGTH:
        return key
    return f"{event_type}:sha256:{hashlib.sha256(fact_id.encode()).hexdigest()[:48]}"


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
    event = AnalyticsEvent(
        event_type=event_type.value,
        user_id=user_id,
        order_id=order_id,
        plan_id=plan_id,
        amount_minor_units=amount_minor_units,
        currency=currency.upper() if currency else None,
        event_metadata=metadata or {},
        occurred_at=occurred_at or utc_now(),
        dedupe_key=dedupe_key,
    )
    session.add(event)
    rollup_repo.add_event(session, event)
    funnel_store.queue_event(session, event)
    return event


def record_order_event(
    session: Session,
    event_type: EventType,
    order,
    *,
    metadata: dict[str, Any],
    occurred_at: dt.datetime,
    amount_minor_units: int | None = None,
    with_money: bool = True,
    fact_id: str | None = None,
) -> AnalyticsEvent:
    """`record_event` for an order's fact: its user, plan and (unless `with_money=False`) its
    amount, or `amount_minor_units` when the fact moves another amount (a refund)."""
    amount = order.amount_minor_units if amount_minor_units is None else amount_minor_units
    return record_event(
        session,
        event_type,
        user_id=order.user_id,
        order_id=order.id,
        plan_id=order.plan_id,
        amount_minor_units=amount if with_money else None,
        currency=order.currency if with_money else None,
        metadata=metadata,
        occurred_at=occurred_at,
        fact_id=fact_id,
    )


def report_engine(source: Session | ReportEngine, today: dt.date | None = None) -> ReportEngine:
    """The SQL engine on a session, or the engine given."""
    return SqlEngine(source, today=today) if isinstance(source, Session) else source


@dataclass(frozen=True)
class Scope:
    """Which days (local days of `zone_name`) and whose events (None: everyone's) a report covers."""

    zone_name: str = "UTC"
    internal_ids: frozenset[int] | None = None
    now: dt.datetime | None = None

    @property
    def exclude_internal(self) -> bool:
        return self.internal_ids is not None

    def fields(self, days: DayRange) -> dict:
        """The response's tz, exclude_internal and incomplete_day."""
        return {"tz": self.zone_name, "exclude_internal": self.exclude_internal, "incomplete_day": self.incomplete_day(days)}

    @property
    def today(self) -> dt.date:
        """Today in the scope's zone."""
        return zones.local_day(self.now or utc_now(), zones.zone(self.zone_name))

    def incomplete_day(self, days: DayRange) -> dt.date | None:
        today = self.today
        return today if days.start <= today <= days.end else None


UTC_SCOPE = Scope()


def scoped_engine(session: Session, source: Session | ReportEngine, scope: Scope, today: dt.date | None = None) -> ReportEngine:
    """The engine that answers in `scope`: the rollups (or the warehouse) for UTC days and
    everyone; less the internal users' own events when they are excluded; for another zone,
    the rollups' whole UTC days plus the events at the range's ends, and the events grouped
    by local day for per-day rows (`app.services.span_engine`, `app.services.events_engine`)."""
    excluded = scope.internal_ids or frozenset()
    if scope.zone_name != "UTC" and isinstance(source, Session):
        return SpanEngine(session, scope.zone_name, excluded=excluded, today=today)
    if scope.zone_name != "UTC" and isinstance(source, ClickHouseEngine):  # its rollups keep UTC days: its events answer
        return ClickHouseZoneEngine(source, scope.zone_name, excluded)
    if scope.zone_name != "UTC":
        return EventsEngine(session, scope.zone_name, users=UserFilter(excluded) if excluded else None)
    base = report_engine(source, today)
    if excluded:
        return SubtractingEngine(base, FewUsersEngine(session, "UTC", excluded))
    return base


@dataclass(frozen=True)
class PeriodTotals:
    current: rollup_repo.Totals
    previous: rollup_repo.Totals
    cut_at: dt.datetime | None  # the previous period stops here (the range includes now)


def period_totals(session: Session, engine: ReportEngine, days: DayRange, scope: Scope) -> PeriodTotals:
    """The range's totals and its previous period's, like with like: when the range includes now,
    the previous period stops as long after its start as now is after the range's start."""
    tz = zones.zone(scope.zone_name)
    previous = days.previous()
    start_at, end_before = zones.day_span(days.start, days.end, tz)
    now = scope.now or utc_now()
    if not start_at <= now < end_before:
        current, before = engine.totals_many([days, previous])
        return PeriodTotals(current, before, None)
    previous_start, previous_end = zones.day_span(previous.start, previous.end, tz)
    cut_at = min(previous_start + (now - start_at), previous_end)
    if hasattr(engine, "totals_between"):  # an engine over any instants (another zone's days)
        return PeriodTotals(engine.totals(days), engine.totals_between(previous_start, cut_at), cut_at)
    # UTC days (another zone has its own engine): the previous period's whole days from the engine;
    # the cut day from the events of its smaller part: before cut_at, or the day's total less what came after.
    cut_day = zones.local_day(cut_at, tz)
    day_start, day_end = zones.day_span(cut_day, cut_day, tz)
    whole = [DayRange(previous.start, cut_day - dt.timedelta(days=1))] if cut_day > previous.start else []
    later = cut_at - day_start > day_end - cut_at
    totals = engine.totals_many([days, *whole, *([DayRange(cut_day, cut_day)] if later else [])])
    excluded = getattr(engine, "excluded", frozenset())
    part = EventsEngine(session, scope.zone_name, users=UserFilter(excluded) if excluded else None)
    if later:
        partial = subtract_totals(totals[-1], part.totals_between(cut_at, day_end))
        totals = totals[:-1]
    else:
        partial = part.totals_between(day_start, cut_at)
    before = add_totals(totals[1], partial) if len(totals) > 1 else partial
    return PeriodTotals(totals[0], before, cut_at)



def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def top_plans(source: Session | ReportEngine, days: DayRange, limit: int = 10) -> list[TopPlan]:
    """Plans by revenue per (plan, currency), at most `limit`."""
    return [TopPlan(**vars(row)) for row in report_engine(source).top_plans(days, limit)]


def ordered_conversion(
    session: Session,
    days: DayRange,
    *,
    tz: str = "UTC",
    internal_user_ids: frozenset[int] = frozenset(),
    now: dt.datetime | None = None,
) -> Conversion:
    """The ordered funnel's conversions of the people who signed up in the range (by user, 14-day window).

    `days` are local days of `tz`; `internal_user_ids` are left out. The funnel tables live in
    the shop's database, so `session` is that database whichever engine answers the rest.
    """
    query = funnel_query.FunnelQuery(
        start=days.start, end=days.end, clamped=days.clamped, by="user", window_days=CONVERSION_WINDOW_DAYS, tz=tz,
        exclude_internal=bool(internal_user_ids), internal_user_ids=frozenset(internal_user_ids), now=now or utc_now(),
    )
    signup, checkout, payment, activation = funnel_query.ENGINE.step_counts(session, query)
    return Conversion(
        signup_to_checkout=_ratio(checkout, signup),
        checkout_to_payment=_ratio(payment, checkout),
        payment_to_activation=_ratio(activation, payment),
        signup_to_activation=_ratio(activation, signup),
    )


def overview(
    source: Session | ReportEngine,
    days: DayRange,
    event_types: list[str] | None = None,
    *,
    session: Session | None = None,
    today: dt.date | None = None,
    current: rollup_repo.Totals | None = None,
    previous: rollup_repo.Totals | None = None,
    scope: Scope = UTC_SCOPE,
    cut_at: dt.datetime | None = None,
    conversion: Conversion | None = None,
) -> Overview:
    """Funnel counts, unique users, conversions, revenue, the previous period and top plans.

    `session` is the shop's database, for the ordered funnel's conversions (default: `source`
    when it is a session); `scope`'s zone, internal users and now go to that funnel too.
    `conversion`: those conversions when the caller has them (the warehouse bench, which has no shop database).
    `today` (default: the clock's) decides which months are closed, i.e. served by month bitmaps;
    `current` and `previous` are the range's and the previous period's totals when the caller has read them.
    """
    if session is None and conversion is None:
        if not isinstance(source, Session):
            raise ValueError("overview: pass the shop's session for the ordered funnel when another engine answers")
        session = source
    engine = report_engine(source, today)
    shown = event_types or ALL_TYPES
    previous_days = days.previous()
    if current is None or previous is None:
        current, previous = engine.totals_many([days, previous_days])
    unique = engine.unique_users(days, shown)
    counts = current.counts
    return Overview(
        **scope.fields(days),
        engine=engine.name,
        fresh_as_of=engine.fresh_as_of(),
        start_date=days.start,
        end_date=days.end,
        clamped=days.clamped,
        counts={k: counts[k] for k in shown},
        unique_users={k: unique[k] for k in shown},
        conversion=conversion or ordered_conversion(
            session, days, tz=scope.zone_name, internal_user_ids=scope.internal_ids or frozenset(), now=scope.now
        ),
        event_count_ratios=Conversion(**{name: _ratio(counts[b], counts[a]) for name, (a, b) in CONVERSIONS.items()}),
        conversion_basis=CONVERSION_BASIS,
        revenue=current.revenue,
        previous=PreviousPeriod(
            start_date=previous_days.start,
            end_date=previous_days.end,
            counts={k: previous.counts[k] for k in shown},
            revenue=previous.revenue,
            compares="same_elapsed_time" if cut_at else "whole_days",
            cut_at=cut_at,
        ),
        top_plans=top_plans(engine, days),
    )


def timeseries(
    source: Session | ReportEngine, days: DayRange, event_types: list[str] | None = None, scope: Scope = UTC_SCOPE
) -> Timeseries:
    """One bucket per UTC day with event counts and revenue per currency."""
    engine = report_engine(source)
    shown = event_types or ALL_TYPES
    rows = {row.day: row for row in engine.daily(days, shown)}
    buckets = []
    for day in days.each_day():
        row = rows.get(day)
        counts = row.counts if row else dict.fromkeys(shown, 0)
        buckets.append(Bucket(date=day, counts=counts, revenue=row.revenue if row else {}))
    return Timeseries(
        **scope.fields(days),
        engine=engine.name,
        fresh_as_of=engine.fresh_as_of(),
        start_date=days.start,
        end_date=days.end,
        clamped=days.clamped,
        event_types=shown,
        buckets=buckets,
    )


def projections(
    source: Session | ReportEngine,
    *,
    window_days: int,
    horizon_days: int,
    currency: str,
    as_of: dt.date,
    today: dt.date | None = None,
    method: str = "moving_average",
    level: int = 80,
    training_days: int = 365,
) -> Projection:
    """Forecast of revenue (one currency), signups and payments; see `app.services.projections`."""
    return projection_service.projections(
        report_engine(source),
        window_days=window_days,
        horizon_days=horizon_days,
        currency=currency,
        as_of=as_of,
        today=today or utc_now().date(),
        method=method,
        level=level,
        training_days=training_days,
    )
