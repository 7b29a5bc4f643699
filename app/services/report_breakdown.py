"""The overview and timeseries split by one attribute: plan, region, currency, or the user's signup week/month.

Read from `analytics_events` (not the rollups, which do not keep these attributes), with
the plan joined for its name and region and the user's own `user_signup` event (one per
user: its dedupe key) for the signup period. Events are grouped in SQL by the attribute,
type, currency and, for a timeseries, day; with a zone other than UTC the day and the
signup instant are read as instants and bucketed into local days here.

Values: the 10 with the most events of the shown types, then "Other" for the rest summed;
events without the attribute (a signup has no plan or currency, an event of a user without
a signup event has no signup week) are "(none)", which competes for the top 10 like any
value. Every event of the range lands in exactly one value, so the values add up to the
overall counts and revenue. Unique users are an exact COUNT(DISTINCT user_id) per shown
value, "Other" included (a user can be in several values, so those do not add up).
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Hashable

from sqlalchemy import BigInteger, and_, case, cast, distinct, func, literal, or_, select
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.models.analytics import AnalyticsEvent, EventType
from app.models.plan import Plan
from app.schemas.analytics import Bucket, BreakdownSeries, BreakdownValue, OverviewBreakdown
from app.services import sqlcompat, zones
from app.services.dates import as_date, next_month
from app.services.funnel_query import BREAKDOWNS, NONE_VALUE, OTHER_VALUE, TOP_VALUES

PAID = EventType.PAYMENT_SUCCEEDED.value
SIGNUP_KINDS = ("signup_week", "signup_month")
# The unique-users query's index of "Other" (the top values are 0..9, "(none)" among them when it is one).
OTHER_INDEX = TOP_VALUES

# A bucket of a series: (its date, its first day, its last day), all local days.
BucketSpan = tuple[dt.date, dt.date, dt.date]


def check_breakdown(value: str | None) -> str | None:
    """The asked breakdown, or 422 naming `breakdown`."""
    if value is not None and value not in BREAKDOWNS:
        raise InvalidInput(f"breakdown: {value!r} is not one of {', '.join(BREAKDOWNS)}")
    return value


def overview_breakdown(
    session: Session, by: str, start_at: dt.datetime, end_before: dt.datetime, event_types: list[str], *,
    tz: str = "UTC", excluded_user_ids: Collection[int] = frozenset(),
) -> OverviewBreakdown:
    """Counts, exact unique users and revenue per value over [start_at, end_before)."""
    source = _Source(session, by, start_at, end_before, event_types, tz, excluded_user_ids)
    totals = source.facts(with_day=False)
    top, other = source.rank(totals)
    unique = source.unique_users(top)
    values = []
    for index, ident in enumerate([*top, *([OTHER] if other else [])]):
        counts, revenue = _summed(totals, {ident} if ident is not OTHER else other, event_types)
        users = unique.get(OTHER_INDEX if ident is OTHER else index, {})
        values.append(BreakdownValue(
            **source.label(ident), counts=counts, unique_users={t: users.get(t, 0) for t in event_types}, revenue=revenue,
        ))
    return OverviewBreakdown(by=by, values=values)


def timeseries_series(
    session: Session, by: str, start_at: dt.datetime, end_before: dt.datetime, event_types: list[str], *,
    tz: str = "UTC", excluded_user_ids: Collection[int] = frozenset(), buckets: list[BucketSpan] | None = None,
) -> list[BreakdownSeries]:
    """Per value (the overview's values), every bucket's counts and revenue; `buckets` default: each local day."""
    source = _Source(session, by, start_at, end_before, event_types, tz, excluded_user_ids)
    buckets = buckets or [(day, day, day) for day in _local_days(start_at, end_before, zones.zone(tz))]
    bucket_of = {}
    for bucket_date, first, last in buckets:
        for offset in range((last - first).days + 1):
            bucket_of[first + dt.timedelta(days=offset)] = bucket_date
    facts = source.facts(with_day=True)
    totals: dict[tuple, tuple[int, int]] = {}
    for (ident, kind, currency, _), (n, amount) in facts.items():
        before = totals.get((ident, kind, currency), (0, 0))
        totals[(ident, kind, currency)] = (before[0] + n, before[1] + amount)
    top, other = source.rank(totals)
    by_bucket: dict[tuple[Hashable, dt.date], dict] = defaultdict(dict)
    shown = set(top)
    for (ident, kind, currency, day), value in facts.items():
        group = ident if ident in shown else OTHER
        cell = by_bucket[(group, bucket_of[day])]
        cell[(ident, kind, currency)] = value
    series = []
    for ident in [*top, *([OTHER] if other else [])]:
        rows = []
        for bucket_date, _, _ in buckets:
            cell = by_bucket.get((ident, bucket_date), {})
            counts, revenue = _summed(cell, None, event_types)
            rows.append(Bucket(date=bucket_date, counts=counts, revenue=revenue))
        series.append(BreakdownSeries(**source.label(ident), buckets=rows))
    return series


class _Other:
    """The marker of the "Other" value (None is "(none)")."""

    def __repr__(self) -> str:
        return OTHER_VALUE


OTHER = _Other()


def _summed(facts: dict, idents: set | None, event_types: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Counts of the shown types and revenue per currency of the facts of `idents` (None: all)."""
    counts = dict.fromkeys(event_types, 0)
    revenue: dict[str, int] = {}
    for (ident, kind, currency), (n, amount) in facts.items():
        if idents is not None and ident not in idents:
            continue
        if kind in counts:
            counts[kind] += n
        if kind == PAID and currency:
            revenue[currency] = revenue.get(currency, 0) + amount
    return counts, dict(sorted(revenue.items()))


def _local_days(start_at: dt.datetime, end_before: dt.datetime, tz) -> list[dt.date]:
    first, last = zones.local_day(start_at, tz), zones.local_day(end_before - dt.timedelta(microseconds=1), tz)
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


class _Source:
    """One breakdown's statements over the events of a range."""

    def __init__(self, session, by, start_at, end_before, event_types, tz, excluded_user_ids):
        self.session = session
        self.by = by
        self.event_types = list(event_types)
        self.tz_name = tz
        self.tz = zones.zone(tz)
        self.events = AnalyticsEvent.__table__
        self.signups = AnalyticsEvent.__table__.alias("signup")
        self.plans = Plan.__table__
        e = self.events
        self.in_range = [e.c.occurred_at >= start_at, e.c.occurred_at < end_before]
        if excluded_user_ids:
            self.in_range.append(or_(e.c.user_id.is_(None), e.c.user_id.not_in(sorted(excluded_user_ids))))
        self.plan_names: dict[int, str] = {}

    # -- the attribute ------------------------------------------------------------------

    def _attribute(self):
        """The raw attribute column (NULL: none) and the FROM clause it needs."""
        e, p, s = self.events, self.plans, self.signups
        if self.by == "plan":
            return e.c.plan_id, e
        if self.by == "region":
            return func.nullif(p.c.region, ""), e.outerjoin(p, p.c.id == e.c.plan_id)
        if self.by == "currency":
            return func.nullif(e.c.currency, ""), e
        signup_of = and_(s.c.user_id == e.c.user_id, s.c.event_type == EventType.USER_SIGNUP.value)
        return s.c.occurred_at, e.outerjoin(s, signup_of)

    def _utc(self) -> bool:
        return self.tz_name == "UTC"

    def _ident(self, raw) -> Hashable:
        """A fact row's attribute as the value's identity: plan id, region, currency or period start; None: (none)."""
        if raw is None or raw == "":
            return None
        if self.by not in SIGNUP_KINDS:
            return raw
        day = as_date(raw) if self._utc() else zones.local_day(raw, self.tz)
        return zones.week_start(day) if self.by == "signup_week" else zones.month_start(day)

    def label(self, ident) -> dict:
        if ident is None:
            return {"value": NONE_VALUE, "key": None}
        if ident is OTHER:
            return {"value": OTHER_VALUE, "key": None}
        if self.by == "plan":
            return {"value": self.plan_names.get(ident) or f"plan {ident}", "key": ident}
        if self.by in SIGNUP_KINDS:
            return {"value": ident.isoformat(), "key": ident.isoformat()}
        return {"value": ident, "key": ident}

    # -- the statements -----------------------------------------------------------------

    def facts(self, *, with_day: bool) -> dict[tuple, tuple[int, int]]:
        """(value, type, currency[, local day]) → (events, payment amount); looks up the plans' names for `label`."""
        e = self.events
        attribute, source = self._attribute()
        if self.by in SIGNUP_KINDS and self._utc():
            attribute = sqlcompat.day_of(self.session, attribute)  # few signup days, not one row per user
        columns = [attribute.label("attribute"), e.c.event_type, e.c.currency]
        if with_day:
            # UTC days grouped in SQL; another zone's local days from the instants, here.
            columns.append((sqlcompat.day_of(self.session, e.c.occurred_at) if self._utc() else e.c.occurred_at).label("day"))
        amount = case((e.c.event_type == PAID, func.coalesce(e.c.amount_minor_units, 0)), else_=0).label("amount")
        # Payments carry the revenue even when payment_succeeded is not a shown type.
        types = e.c.event_type.in_(sorted({*self.event_types, PAID}))
        rows = select(*columns, amount).select_from(source).where(*self.in_range, types).subquery()
        keys = [rows.c.attribute, rows.c.event_type, rows.c.currency, *([rows.c.day] if with_day else [])]
        statement = select(*keys, func.count(), cast(func.sum(rows.c.amount), BigInteger)).group_by(*keys)
        result: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        for raw, kind, currency, *rest in self.session.connection().execute(statement):
            *day, n, total = rest
            key = (self._ident(raw), kind, currency or "")
            if with_day:
                key += (as_date(day[0]) if self._utc() else zones.local_day(day[0], self.tz),)
            result[key][0] += int(n)
            result[key][1] += int(total or 0)
        if self.by == "plan":
            ids = {key[0] for key in result if key[0] is not None}
            if ids:
                self.plan_names = dict(self.session.execute(select(Plan.id, Plan.name).where(Plan.id.in_(ids))).all())
        return {key: (n, total) for key, (n, total) in result.items()}

    def rank(self, totals: dict[tuple, tuple[int, int]]) -> tuple[list, set]:
        """The top values by events of the shown types (ties: by their label), and the set of the rest."""
        events: dict[Hashable, int] = defaultdict(int)
        for (ident, kind, _), (n, _) in totals.items():
            events[ident] += n if kind in self.event_types else 0
        ranked = sorted(events, key=lambda ident: (-events[ident], self.label(ident)["value"], str(ident)))
        return ranked[:TOP_VALUES], set(ranked[TOP_VALUES:])

    def unique_users(self, top: list) -> dict[int, dict[str, int]]:
        """Exact distinct users per (index of the value in `top`, or OTHER_INDEX) and shown type."""
        e = self.events
        attribute, source = self._attribute()
        branches = [(self._matches(attribute, ident), literal(index)) for index, ident in enumerate(top)]
        index = case(*branches, else_=literal(OTHER_INDEX)) if branches else literal(OTHER_INDEX)
        shown = [*self.in_range, e.c.event_type.in_(self.event_types)]
        # Grouped outside: PostgreSQL does not see a CASE of bound parameters in GROUP BY as the selected one.
        rows = select(index.label("value_index"), e.c.event_type, e.c.user_id).select_from(source).where(*shown).subquery()
        statement = (
            select(rows.c.value_index, rows.c.event_type, func.count(distinct(rows.c.user_id)))
            .group_by(rows.c.value_index, rows.c.event_type)
        )
        result: dict[int, dict[str, int]] = defaultdict(dict)
        for value_index, kind, n in self.session.connection().execute(statement):
            result[int(value_index)][kind] = int(n)
        return result

    def _matches(self, attribute, ident):
        """The SQL condition of an event having the value `ident`."""
        if ident is None:
            return attribute.is_(None)
        if self.by not in SIGNUP_KINDS:
            return attribute == ident
        after = ident + dt.timedelta(days=7) if self.by == "signup_week" else next_month(ident)
        return and_(attribute >= zones.local_midnight(ident, self.tz), attribute < zones.local_midnight(after, self.tz))

