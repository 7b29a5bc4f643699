"""Reports answered from `analytics_events` itself: any zone's local days, any set of users left out.

The rollups hold UTC days and every user's events together. A report in another zone
(`tz=`) or without the internal users (`exclude_internal=true`) is answered here instead,
exactly, with the same typed pieces as `app.services.report_engine.SqlEngine`:

- `EventsEngine` groups the events of a range by local day in SQL. A zone's UTC offset
  is constant between its DST transitions, so the range is cut at those instants into a
  few stretches, and within a stretch the local day is the calendar day of
  `occurred_at + offset` (a 23- or 25-hour day is one day; a day split by a transition
  gets its two parts added up).
- The helpers that add and subtract `Totals`, shared by `app.services.span_engine` and
  `app.services.excluded_users` (the internal users taken away from another engine).
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, or_, select, union_all
from sqlalchemy.orm import Session

from app.models.analytics import AnalyticsEvent, EventType
from app.models.plan import Plan
from app.services import rollup_repo, sqlcompat, zones
from app.services.dates import DayRange, as_date
from app.services.rollup_repo import AMOUNT_TYPES, DayRow, PlanRevenue, Totals

PAID, SIGNUP = EventType.PAYMENT_SUCCEEDED.value, EventType.USER_SIGNUP.value
REFUNDED, FAILED = EventType.PAYMENT_REFUNDED.value, EventType.PAYMENT_FAILED.value


@dataclass(frozen=True)
class UserFilter:
    """Which users' events count: all but `ids` (only=False), or only `ids` (only=True)."""

    ids: frozenset[int]
    only: bool = False


@lru_cache(maxsize=256)
def stretches(start_at: dt.datetime, end_before: dt.datetime, zone_name: str) -> tuple[tuple[dt.datetime, dt.datetime, int], ...]:
    """[start_at, end_before) cut where the zone's UTC offset changes: (from, before, offset seconds)."""
    tz = zones.zone(zone_name)
    second = dt.timedelta(seconds=1)
    out: list[tuple[dt.datetime, dt.datetime, int]] = []
    begin, offset = start_at, _offset(start_at, tz)
    probe = start_at  # the offset at probe is `offset`
    while probe < end_before:
        step = min(probe + dt.timedelta(hours=12), end_before)
        last = step if step < end_before else end_before - second
        if _offset(last, tz) == offset:
            probe = step
            continue
        low, high = probe, last  # offset(low) is the old one, offset(high) a new one: bisect to the second
        while high - low > second:
            middle = (low + (high - low) / 2).replace(microsecond=0)
            if middle <= low:
                break
            low, high = (middle, high) if _offset(middle, tz) == offset else (low, middle)
        out.append((begin, high, offset))
        begin, offset, probe = high, _offset(high, tz), high
    out.append((begin, end_before, offset))
    return tuple(part for part in out if part[0] < part[1])


def _offset(moment: dt.datetime, tz: ZoneInfo) -> int:
    return int(moment.astimezone(tz).utcoffset().total_seconds())


class EventsEngine:
    """The report questions over local days of `zone_name`, from the events (see the module note)."""

    name = "sql"

    def __init__(self, session: Session, zone_name: str = "UTC", *, users: UserFilter | None = None) -> None:
        self.session = session
        self.zone_name = zone_name
        self.tz = zones.zone(zone_name)
        self.users = users

    def fresh_as_of(self) -> dt.datetime | None:
        return None

    # --- building blocks ---------------------------------------------------------------

    def span(self, days: DayRange) -> tuple[dt.datetime, dt.datetime]:
        return zones.day_span(days.start, days.end, self.tz)

    def _where(self, start_at: dt.datetime, end_before: dt.datetime, *more):
        e = AnalyticsEvent
        conditions = [e.occurred_at >= start_at, e.occurred_at < end_before, *more]
        if self.users is not None:
            ids = sorted(self.users.ids)
            if self.users.only:
                conditions.append(e.user_id.in_(ids) if ids else e.id.is_(None))
            elif ids:
                conditions.append(or_(e.user_id.is_(None), e.user_id.not_in(ids)))
        return conditions

    def _each_span(self, spans, build) -> list:
        """Rows of `build(start_at, end_before)` for every span, in one UNION ALL (each part an index range)."""
        return self._run_all([build(lo, hi) for lo, hi in spans if lo < hi])

    def _run_all(self, parts: list) -> list:
        """The rows of every statement of `parts`, in one UNION ALL."""
        if not parts:
            return []
        return self._run(parts[0] if len(parts) == 1 else union_all(*parts))

    def totals_of_spans(self, spans: list[tuple[dt.datetime, dt.datetime]]) -> Totals:
        e = AnalyticsEvent
        currency = func.coalesce(e.currency, "").label("currency")
        rows = self._each_span(spans, lambda lo, hi: select(e.event_type, currency, func.count().label("n"), self._amount().label("amount"))
                               .where(*self._where(lo, hi)).group_by(e.event_type, currency))
        summed = add_up(((kind, cur), n, amount) for kind, cur, n, amount in rows)
        return rollup_repo._as_totals([(kind, cur, n, amount) for (kind, cur), (n, amount) in summed.items()])

    def user_ids_of_spans(self, spans: list[tuple[dt.datetime, dt.datetime]], types: list[str]) -> dict[str, set[int]]:
        """Per type, the users with such an event in `spans`."""
        e = AnalyticsEvent
        found: dict[str, set[int]] = {t: set() for t in types}
        rows = self._each_span(spans, lambda lo, hi: select(e.event_type, e.user_id).distinct()
                               .where(*self._where(lo, hi, e.event_type.in_(types), e.user_id.is_not(None))))
        for kind, user_id in rows:
            found[kind].add(user_id)
        return found

    def plan_totals_of_spans(self, spans: list[tuple[dt.datetime, dt.datetime]]) -> dict[tuple[int, str], tuple[int, int]]:
        """(plan id, currency) → (revenue, payments) in `spans`."""
        e = AnalyticsEvent
        currency = func.coalesce(e.currency, "").label("currency")
        rows = self._each_span(spans, lambda lo, hi: select(
            e.plan_id, currency, func.sum(func.coalesce(e.amount_minor_units, 0)).label("revenue"), func.count().label("n")
        ).where(*self._where(lo, hi, e.event_type == PAID, e.plan_id.is_not(None))).group_by(e.plan_id, currency))
        return add_up(((plan_id, cur), revenue, n) for plan_id, cur, revenue, n in rows)

    def _run(self, statement) -> list:
        return self.session.connection().execute(statement).all()

    def _amount(self):
        e = AnalyticsEvent
        return func.sum(case((e.event_type.in_(AMOUNT_TYPES), func.coalesce(e.amount_minor_units, 0)), else_=0))

    def _by_local_day(self, start_at: dt.datetime, end_before: dt.datetime, columns: list, *where) -> list[tuple]:
        """(local day, *columns, events, amount) rows; a day cut by a DST change may come twice."""
        e = AnalyticsEvent
        parts = []
        for lo, hi, offset in stretches(start_at, end_before, self.zone_name):
            day = sqlcompat.shifted_day_of(self.session, e.occurred_at, offset)
            parts.append(
                select(day.label("day"), *columns, func.count().label("events"), self._amount().label("amount"))
                .where(*self._where(lo, hi, *where))
                .group_by(day, *columns)
            )
        return [(as_date(row[0]), *row[1:-2], int(row[-2]), int(row[-1] or 0)) for row in self._run_all(parts)]

    # --- the ReportEngine questions ----------------------------------------------------

    def totals_between(self, start_at: dt.datetime, end_before: dt.datetime) -> Totals:
        """Totals over any instants (the previous period cut at the current one's elapsed time)."""
        return self.totals_of_spans([(start_at, end_before)])

    def totals(self, days: DayRange) -> Totals:
        return self.totals_between(*self.span(days))

    def totals_many(self, ranges: list[DayRange]) -> list[Totals]:
        return [self.totals(days) for days in ranges]

    def rows_by_day(self, days: DayRange, types: list[str]) -> dict[tuple[dt.date, str, str], tuple[int, int]]:
        e = AnalyticsEvent
        rows = self._by_local_day(*self.span(days), [e.event_type, func.coalesce(e.currency, "").label("currency")], e.event_type.in_(types))
        return add_up(((day, kind, currency), n, amount) for day, kind, currency, n, amount in rows)

    def daily(self, days: DayRange, types: list[str]) -> list[DayRow]:
        return day_rows(self.rows_by_day(days, money_and(types)), types)

    def unique_users(self, days: DayRange, types: list[str]) -> dict[str, int]:
        e = AnalyticsEvent
        rows = self._run(
            select(e.event_type, func.count(func.distinct(e.user_id)))
            .where(*self._where(*self.span(days), e.event_type.in_(types), e.user_id.is_not(None)))
            .group_by(e.event_type)
        )
        found = {kind: int(n) for kind, n in rows}
        return {t: found.get(t, 0) for t in types}

    def _plan_rows(self, days: DayRange) -> list[tuple]:
        e = AnalyticsEvent
        currency = func.coalesce(e.currency, "").label("currency")
        return self._by_local_day(*self.span(days), [e.plan_id, currency], e.event_type == PAID, e.plan_id.is_not(None))

    def plan_rows_by_day(self, days: DayRange) -> list[tuple]:
        """(day, plan id, currency, payments, revenue), like the daily plan rollup's rows."""
        merged = add_up(((day, plan_id, currency), n, amount) for day, plan_id, currency, n, amount in self._plan_rows(days))
        return [(*key, n, amount) for key, (n, amount) in sorted(merged.items())]

    def plan_totals(self, days: DayRange) -> dict[tuple[int, str], tuple[int, int]]:
        """(plan id, currency) → (revenue, payments) over the range."""
        return self.plan_totals_of_spans([self.span(days)])

    def top_plans(self, days: DayRange, limit: int) -> list[PlanRevenue]:
        ranked = sorted(self.plan_totals(days).items(), key=lambda item: (-item[1][0], -item[1][1], item[0][0], item[0][1]))
        return with_names(self.session, [(plan_id, cur, revenue, n) for (plan_id, cur), (revenue, n) in ranked[:limit]])

    def forecast_series_by_day(self, start: dt.date, end: dt.date, currency: str) -> dict[dt.date, tuple[int, int, int]]:
        return forecast_series(self.rows_by_day(DayRange(start, end), [SIGNUP, PAID]), currency)

    def first_event_day(self) -> dt.date | None:
        e = AnalyticsEvent
        far = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
        first = self.session.connection().scalar(
            select(e.occurred_at).where(*self._where(dt.datetime(1970, 1, 1, tzinfo=dt.UTC), far)).order_by(e.occurred_at).limit(1)
        )
        return zones.local_day(first, self.tz) if first is not None else None


def add_up(rows) -> dict:
    """(key, a, b) rows summed per key into key → (a, b): a day split by a DST change, or parts of a UNION."""
    summed: dict = defaultdict(lambda: [0, 0])
    for key, a, b in rows:
        summed[key][0] += int(a or 0)
        summed[key][1] += int(b or 0)
    return {key: (a, b) for key, (a, b) in summed.items()}


def money_and(types: list[str]) -> list[str]:
    """`types` and the money facts a day row carries beside them."""
    return sorted({*types, PAID, REFUNDED, FAILED})


def day_rows(rows: dict[tuple[dt.date, str, str], tuple[int, int]], types: list[str]) -> list[DayRow]:
    """Per-day rows from (day, type, currency) → (events, amount): counts of `types`, revenue, refunds, payments."""
    by_day: dict[dt.date, dict] = {}
    for (day, kind, currency), (n, amount) in sorted(rows.items()):
        row = by_day.setdefault(day, {"counts": dict.fromkeys(types, 0), "revenue": {}, "refunds": {}, "failed": 0, "paid": 0})
        if kind in row["counts"]:
            row["counts"][kind] += n
        if kind == PAID:
            row["paid"] += n
            if currency:
                row["revenue"][currency] = row["revenue"].get(currency, 0) + amount
        elif kind == REFUNDED and currency:
            row["refunds"][currency] = row["refunds"].get(currency, 0) + amount
        elif kind == FAILED:
            row["failed"] += n
    return [
        DayRow(day, r["counts"], r["revenue"], refunds=r["refunds"], payments_failed=r["failed"], payments=r["paid"])
        for day, r in by_day.items()
    ]


def forecast_series(rows: dict[tuple[dt.date, str, str], tuple[int, int]], currency: str) -> dict[dt.date, tuple[int, int, int]]:
    """(revenue in `currency`, signups, payments in `currency`) per day with any, from per-day rows."""
    series: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (day, kind, cur), (n, amount) in rows.items():
        if kind == SIGNUP:
            series[day][1] += n
        elif kind == PAID and cur == currency:
            series[day][0] += amount
            series[day][2] += n
    return {day: tuple(values) for day, values in sorted(series.items()) if any(values)}


def with_names(session: Session, rows: list[tuple[int, str, int, int]]) -> list[PlanRevenue]:
    """(plan id, currency, revenue, payments) rows as PlanRevenue with the plans' names."""
    names = dict(session.execute(select(Plan.id, Plan.name).where(Plan.id.in_({r[0] for r in rows}))).all()) if rows else {}
    return [PlanRevenue(plan_id, names.get(plan_id), cur, revenue, n) for plan_id, cur, revenue, n in rows]


def _minus(a: dict, b: dict) -> dict:
    return {key: a.get(key, 0) - b.get(key, 0) for key in a}


def subtract_totals(total: Totals, part: Totals) -> Totals:
    amounts = None
    if total.amounts is not None:
        amounts = {}
        for key, (n, amount) in total.amounts.items():
            less_n, less_amount = (part.amounts or {}).get(key, (0, 0))
            if n - less_n:
                amounts[key] = (n - less_n, amount - less_amount)
    payments = None
    if total.payments is not None:  # a currency stays while payments in it remain
        payments = {c: n - (part.payments or {}).get(c, 0) for c, n in total.payments.items()}
        payments = {c: n for c, n in payments.items() if n > 0}
        revenue = {c: v for c, v in _minus(total.revenue, part.revenue).items() if c in payments}
    else:
        revenue = {c: v for c, v in _minus(total.revenue, part.revenue).items() if v or c not in part.revenue}
    return Totals(_minus(total.counts, part.counts), revenue, amounts, payments)


def add_totals(a: Totals, b: Totals) -> Totals:
    amounts = None
    if a.amounts is not None and b.amounts is not None:
        amounts = dict(a.amounts)
        for key, (n, amount) in b.amounts.items():
            has_n, has_amount = amounts.get(key, (0, 0))
            amounts[key] = (has_n + n, has_amount + amount)
    revenue = dict(a.revenue)
    for currency, value in b.revenue.items():
        revenue[currency] = revenue.get(currency, 0) + value
    counts = {k: a.counts.get(k, 0) + b.counts.get(k, 0) for k in {*a.counts, *b.counts}}
    payments = None
    if a.payments is not None and b.payments is not None:
        payments = dict(a.payments)
        for currency, n in b.payments.items():
            payments[currency] = payments.get(currency, 0) + n
    return Totals({k: counts[k] for k in a.counts} | counts, dict(sorted(revenue.items())), amounts, payments)
