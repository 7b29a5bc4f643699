"""The rollup repository: every write and read of the analytics rollup tables.

`add_event` keeps the rollups in step with `analytics_events` inside the business
transaction; `rebuild` recomputes them from the events (repair, bulk loads). The reads
answer the reports from a few thousand rollup rows instead of millions of events.
All reads run through Core on the session's connection: rollup rows are written by Core
upserts and are never pending in the session, and ORM row processing costs more than
the query on a year of rows.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import BigInteger, Integer, and_, bindparam, case, cast, delete, func, insert, literal, or_, select, union_all
from sqlalchemy.orm import Session

from app.config import get_settings
from app.models.analytics import (
    AMOUNT_EVENTS,
    FUNNEL,
    AnalyticsDailyPlan,
    AnalyticsDailyTotal,
    AnalyticsEvent,
    AnalyticsLocalDailyTotal,
    AnalyticsMonthlyPlan,
    AnalyticsMonthlyTotal,
    EventType,
)
from app.models.plan import Plan
from app.services import sqlcompat, zones
from app.services.funnel_store import rollup_zone_name
from app.services.dates import DayRange, as_date, is_month_end, next_month

ROLLUP_TABLES = (AnalyticsDailyTotal, AnalyticsMonthlyTotal, AnalyticsDailyPlan, AnalyticsMonthlyPlan, AnalyticsLocalDailyTotal)
PAID = EventType.PAYMENT_SUCCEEDED.value
REFUNDED, FAILED = EventType.PAYMENT_REFUNDED.value, EventType.PAYMENT_FAILED.value
# Types whose amounts are summed in revenue_minor_units: payments, and refunds (per type, so never mixed).
AMOUNT_TYPES = [e.value for e in AMOUNT_EVENTS]


@dataclass(frozen=True)
class Totals:
    """Events per type and revenue per currency over a range."""

    counts: dict[str, int]
    revenue: dict[str, int]
    # (type, currency) → (events, amount) of every type, money facts included (None: the engine leaves them to the shop's rollups).
    amounts: dict[tuple[str, str], tuple[int, int]] | None = None
    # payment_succeeded events per currency: which currencies `revenue` holds, even at an amount of 0.
    payments: dict[str, int] | None = None


@dataclass(frozen=True)
class DayRow:
    """One day's events per type and revenue per currency (days without events are absent).

    The money facts beside the funnel (refunds per currency, failed and succeeded payments)
    are None from an engine that leaves them to the shop's own rollups.
    """

    day: dt.date
    counts: dict[str, int]
    revenue: dict[str, int]
    refunds: dict[str, int] | None = None
    payments_failed: int | None = None
    payments: int | None = None


@dataclass(frozen=True)
class PlanRevenue:
    plan_id: int
    plan_name: str | None
    currency: str
    revenue_minor_units: int
    payments: int


# --- writes -------------------------------------------------------------------------


def add_event(session: Session, event: AnalyticsEvent) -> None:
    """Add one staged event to the daily totals and, for a payment, to the plan rollups."""
    day = event.occurred_at.astimezone(dt.UTC).date()
    revenue = (event.amount_minor_units or 0) if event.event_type in AMOUNT_TYPES else 0
    keys = {"event_type": event.event_type, "currency": event.currency or ""}
    counts = {"event_count": 1, "revenue_minor_units": revenue}
    sqlcompat.add_counts(session, AnalyticsDailyTotal.__table__, {"day": day, **keys}, counts)
    sqlcompat.add_counts(session, AnalyticsMonthlyTotal.__table__, {"month": day.replace(day=1), **keys}, counts)
    zone_name = local_days_zone(session)
    if zone_name:
        local = zones.local_day(event.occurred_at, zones.zone(zone_name))
        sqlcompat.add_counts(session, AnalyticsLocalDailyTotal.__table__, {"day": local, **keys}, counts)
    if event.event_type == PAID and event.plan_id is not None:
        increments = {"payments": 1, "revenue_minor_units": revenue}
        keys = {"plan_id": event.plan_id, "currency": event.currency or ""}
        sqlcompat.add_counts(session, AnalyticsDailyPlan.__table__, {"day": day, **keys}, increments)
        sqlcompat.add_counts(session, AnalyticsMonthlyPlan.__table__, {"month": day.replace(day=1), **keys}, increments)


def rebuild(session: Session) -> dict[str, int]:
    """Replace every rollup row by a GROUP BY over analytics_events; returns rows per table."""
    e = AnalyticsEvent
    day = sqlcompat.day_of(session, e.occurred_at)
    currency = func.coalesce(e.currency, "")
    is_payment = e.event_type == PAID
    has_amount = e.event_type.in_(AMOUNT_TYPES)
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
    # Months from the daily rows: bucketing a datetime by month differs on every
    # database, and the daily tables are small next to the events.
    _months_from_days(session, AnalyticsDailyTotal, AnalyticsMonthlyTotal, ("event_type", "currency"),
                      ("event_count", "revenue_minor_units"))
    _months_from_days(session, AnalyticsDailyPlan, AnalyticsMonthlyPlan, ("plan_id", "currency"),
                      ("payments", "revenue_minor_units"))
    rebuild_local_days(session, get_settings().analytics_timezone)  # the zone the funnel's rebuild records
    return {table.__tablename__: session.scalar(select(func.count()).select_from(table)) for table in ROLLUP_TABLES}


def local_days_zone(session: Session) -> str | None:
    """The zone whose local daily totals are kept: ANALYTICS_TIMEZONE when it is not UTC and is the zone
    the last rebuild recorded (until `rebuild-rollups` runs after a change, none is kept or read).
    The default, UTC, costs the write path nothing: no read of the recorded zone."""
    setting = get_settings().analytics_timezone
    if setting == "UTC":
        return None
    return setting if rollup_zone_name(session) == setting else None


def rebuild_local_days(session: Session, zone_name: str | None = None) -> int:
    """Replace the local daily totals by the events grouped by local day of `zone_name` (default: the
    zone `local_days_zone` names); none are kept for UTC, whose days are the daily totals'. Returns the rows written."""
    from app.services.events_engine import EventsEngine  # it reads through this module: import late

    zone_name = zone_name or local_days_zone(session) or "UTC"
    session.execute(delete(AnalyticsLocalDailyTotal))
    e = AnalyticsEvent
    first, last = session.execute(select(func.min(e.occurred_at), func.max(e.occurred_at))).one()
    if zone_name == "UTC" or first is None:
        return 0
    tz = zones.zone(zone_name)
    days = DayRange(zones.local_day(first, tz), zones.local_day(last, tz))
    types = [kind for kind in session.scalars(select(e.event_type).distinct())]
    rows = [
        {"day": day, "event_type": kind, "currency": currency, "event_count": n, "revenue_minor_units": amount}
        for (day, kind, currency), (n, amount) in sorted(EventsEngine(session, zone_name).rows_by_day(days, types).items())
    ]
    for start in range(0, len(rows), 10_000):
        session.execute(insert(AnalyticsLocalDailyTotal), rows[start:start + 10_000])
    return len(rows)


def _months_from_days(session: Session, daily, monthly, keys: tuple[str, str], sums: tuple[str, str]) -> None:
    months: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    columns = [getattr(daily, name) for name in (*keys, *sums)]
    for row_day, key_a, key_b, first, second in session.execute(select(daily.day, *columns)):
        month_totals = months[(as_date(row_day).replace(day=1), key_a, key_b)]
        month_totals[0] += first
        month_totals[1] += second
    if months:
        session.execute(
            insert(monthly),
            [{"month": m, keys[0]: a, keys[1]: b, sums[0]: x, sums[1]: y} for (m, a, b), (x, y) in sorted(months.items())],
        )


# --- reads --------------------------------------------------------------------------


def _total(expression):
    """SUM as a 64-bit integer: MariaDB and PostgreSQL return DECIMAL/NUMERIC otherwise, which
    their drivers decode into Decimal objects, the larger part of a 365-day read's cost."""
    return cast(func.sum(expression), BigInteger)


def _in_range(start: dt.date, end: dt.date):
    t = AnalyticsDailyTotal
    return (t.day >= start, t.day <= end)


def month_span(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """[first, after) of the whole calendar months inside start..end (first == after: none)."""
    first_full = start if start.day == 1 else next_month(start)
    after_last_full = next_month(end) if is_month_end(end) else end.replace(day=1)
    return first_full, max(first_full, after_last_full)


def _months_then_edges(daily, monthly, columns: tuple[str, ...], with_months: bool, prefix: str = "", extra=()):
    """Rows of the monthly table for the whole months [first_full, after) and of the daily table for the
    other days of [start, end], as a statement with those four bound parameters (named with `prefix`).

    The first column of each part says which: the month, or the day; `extra` columns follow it.
    """
    def bound(name):
        return bindparam(prefix + name, type_=daily.day.type)

    daily_cols = [getattr(daily, c) for c in columns]
    start, end = bound("start"), bound("end")
    if not with_months:
        return select(daily.day.label("period"), *extra, *daily_cols).where(daily.day >= start, daily.day <= end)
    first_full, after = bound("first_full"), bound("after")
    edges = or_(and_(daily.day >= start, daily.day < first_full), and_(daily.day >= after, daily.day <= end))
    return union_all(
        select(monthly.month.label("period"), *extra, *(getattr(monthly, c) for c in columns)).where(
            monthly.month >= first_full, monthly.month < after
        ),
        select(daily.day.label("period"), *extra, *daily_cols).where(edges),
    )


def _span_params(
    start: dt.date, end: dt.date, months: tuple[dt.date, dt.date] | None = None, prefix: str = ""
) -> tuple[bool, dict]:
    """Whether whole months take part, and the bound values of `_months_then_edges`."""
    first_full, after = months or month_span(start, end)
    values = {"start": start, "end": end, "first_full": first_full, "after": after}
    return first_full < after, {prefix + name: value for name, value in values.items()}


# The statements below are built once per shape and run with bound days: building a
# union of subqueries costs more Python time than the database takes to answer it.
TOTAL_COLUMNS = ("event_type", "currency", "event_count", "revenue_minor_units")


@lru_cache(maxsize=32)
def _totals_statement(shapes: tuple[bool, ...]):
    """Totals per (range, type, currency) of len(shapes) ranges in one statement (range i's parameters are r<i>_...)."""
    parts = [
        _months_then_edges(AnalyticsDailyTotal, AnalyticsMonthlyTotal, TOTAL_COLUMNS, with_months, f"r{i}_",
                           (literal(i, Integer).label("range_index"),))
        for i, with_months in enumerate(shapes)
    ]
    # One flat UNION ALL: SQLite does not accept a compound select nested in another.
    selects = [piece for part in parts for piece in getattr(part, "selects", [part])]
    rows = (selects[0] if len(selects) == 1 else union_all(*selects)).subquery()
    return (
        select(rows.c.range_index, rows.c.event_type, rows.c.currency, _total(rows.c.event_count),
               _total(rows.c.revenue_minor_units))
        .group_by(rows.c.range_index, rows.c.event_type, rows.c.currency)
    )


def _total_rows(session: Session, ranges: list[DayRange]) -> list[list[tuple[str, str, int, int]]]:
    shapes, params = [], {}
    for i, days in enumerate(ranges):
        with_months, bound = _span_params(days.start, days.end, prefix=f"r{i}_")
        shapes.append(with_months)
        params.update(bound)
    result: list[list[tuple[str, str, int, int]]] = [[] for _ in ranges]
    for index, event_type, currency, count, amount in session.connection().execute(_totals_statement(tuple(shapes)), params):
        result[index].append((event_type, currency, int(count), int(amount)))
    return result


def _as_totals(rows: list[tuple[str, str, int, int]]) -> Totals:
    counts = {e.value: 0 for e in FUNNEL}
    revenue: dict[str, int] = {}
    amounts: dict[tuple[str, str], tuple[int, int]] = {}
    for event_type, currency, count, amount in rows:
        amounts[(event_type, currency)] = (count, amount)
        if event_type in counts:
            counts[event_type] += count
        if event_type == PAID and currency:
            revenue[currency] = revenue.get(currency, 0) + amount
    payments = {currency: n for (event_type, currency), (n, _) in amounts.items() if event_type == PAID and currency}
    return Totals(counts, dict(sorted(revenue.items())), amounts, payments)


def totals(session: Session, days: DayRange) -> Totals:
    """Events per funnel type (all four, zeros included) and revenue per currency, plus every type's amounts."""
    return _as_totals(_total_rows(session, [days])[0])


def totals_many(session: Session, ranges: list[DayRange]) -> list[Totals]:
    """`totals` of several ranges (a report and its previous period) in one round trip."""
    return [_as_totals(rows) for rows in _total_rows(session, ranges)]


def totals_by_type_and_currency(session: Session, days: DayRange, types: list[str]) -> dict[tuple[str, str], tuple[int, int]]:
    """(type, currency) → (events, amount) over the range, from whole months and the edge days."""
    wanted = set(types)
    return {(kind, currency): (n, amount) for kind, currency, n, amount in _total_rows(session, [days])[0] if kind in wanted}


def _range_bounds(column):
    return column >= bindparam("start", type_=column.type), column <= bindparam("end", type_=column.type)


_ALL_CURRENCIES = (
    select(AnalyticsMonthlyTotal.currency).distinct()
    .where(AnalyticsMonthlyTotal.event_type.in_([PAID, REFUNDED]), AnalyticsMonthlyTotal.currency != "")
)


# Straight from the days: always complete for the range, whatever the monthly table holds.
def _range_currencies(t):
    return select(t.currency).distinct().where(*_range_bounds(t.day), t.event_type.in_([PAID, REFUNDED]), t.currency != "")


_RANGE_CURRENCIES = {table: _range_currencies(table) for table in (AnalyticsDailyTotal, AnalyticsLocalDailyTotal)}


class _KnownCurrencies:
    """The currencies of payments and refunds this process has seen (a superset is harmless:
    a currency without amounts in a range is an empty column). The daily pivot counts rows
    of any other currency, and a non-zero count reads the range's currencies and runs it
    again, so a new currency is never missed and the usual read is a single round trip."""

    def __init__(self) -> None:
        self.codes: tuple[str, ...] | None = None

    def get(self, session: Session) -> tuple[str, ...]:
        if self.codes is None:
            self.codes = tuple(sorted(session.connection().execute(_ALL_CURRENCIES).scalars()))
        return self.codes

    def learn(self, session: Session, codes: tuple[str, ...]) -> None:
        self.codes = tuple(sorted({*codes, *self.get(session)}))


KNOWN_CURRENCIES = _KnownCurrencies()


@lru_cache(maxsize=128)
def _daily_statement(types: tuple[str, ...], currencies: tuple[str, ...], t=AnalyticsDailyTotal):
    """The daily pivot for these types and currencies, built once (building it costs more than SQLite runs it)."""
    paid, refunded = t.event_type == PAID, t.event_type == REFUNDED
    money = t.event_type.in_([PAID, REFUNDED])
    columns = [_total(case((t.event_type == event_type, t.event_count), else_=0)) for event_type in types]
    columns += [_total(case((and_(paid, t.currency == currency), t.revenue_minor_units))) for currency in currencies]
    columns += [_total(case((and_(refunded, t.currency == currency), t.revenue_minor_units))) for currency in currencies]
    columns += [_total(case((t.event_type == FAILED, t.event_count), else_=0)), _total(case((paid, t.event_count), else_=0))]
    other_currency = and_(money, t.currency != "", t.currency.not_in(currencies)) if currencies else and_(money, t.currency != "")
    columns.append(_total(case((other_currency, 1), else_=0)))
    needed = sorted({*types, PAID, REFUNDED, FAILED})
    return select(t.day, *columns).where(*_range_bounds(t.day), t.event_type.in_(needed)).group_by(t.day)


def daily(session: Session, days: DayRange, types: list[str], table=AnalyticsDailyTotal) -> list[DayRow]:
    """One row per day with events: counts of `types`, revenue per currency, and the day's money facts.

    One row per day instead of one per (day, type, currency): a fifth of the values to
    decode, which is what a 365-day series costs on MariaDB's pure-Python driver. The
    refunds and failed payments come in the same row, so the finance figures need no
    second read of the same days.
    """
    currencies = KNOWN_CURRENCIES.get(session)
    bounds = {"start": days.start, "end": days.end}
    rows = session.connection().execute(_daily_statement(tuple(types), currencies, table), bounds).all()
    if any(row[-1] for row in rows):  # a currency this process has not seen yet: read them from the days
        currencies = tuple(sorted(session.connection().execute(_RANGE_CURRENCIES[table], bounds).scalars()))
        KNOWN_CURRENCIES.learn(session, currencies)
        rows = session.connection().execute(_daily_statement(tuple(types), currencies, table), bounds).all()
    n_types, n_currencies = len(types), len(currencies)
    money_at, refunds_at = n_types + 1, n_types + n_currencies + 1
    # The sums are cast to 64-bit integers in SQL, so every driver hands back ints.
    return [
        DayRow(
            as_date(row[0]),
            dict(zip(types, row[1:money_at])),
            {c: v for c, v in zip(currencies, row[money_at:refunds_at]) if v is not None},
            refunds={c: v for c, v in zip(currencies, row[refunds_at:-3]) if v is not None},
            payments_failed=row[-3],
            payments=row[-2],
        )
        for row in rows
    ]


def rows_by_day(
    session: Session, days: DayRange, types: list[str], table=AnalyticsDailyTotal
) -> dict[tuple[dt.date, str, str], tuple[int, int]]:
    """(day, type, currency) → (events, amount) for `types` (per-day amounts, e.g. to convert at each day's rate)."""
    t = table
    rows = session.connection().execute(
        select(t.day, t.event_type, t.currency, t.event_count, t.revenue_minor_units).where(
            t.day >= days.start, t.day <= days.end, t.event_type.in_(types)
        )
    ).all()
    return {(as_date(day), kind, currency): (int(n), int(amount)) for day, kind, currency, n, amount in rows}


def plan_rows_by_day(session: Session, days: DayRange) -> list[tuple]:
    """(day, plan id, currency, payments, revenue) rows of the daily plan rollup in the range."""
    d = AnalyticsDailyPlan
    return session.connection().execute(
        select(d.day, d.plan_id, d.currency, d.payments, d.revenue_minor_units).where(d.day >= days.start, d.day <= days.end)
    ).all()


def counts_by_day(session: Session, start: dt.date, end: dt.date, types: list[str]) -> dict[tuple[dt.date, str], int]:
    """Events per (day, type) with at least one event."""
    t = AnalyticsDailyTotal
    rows = session.connection().execute(
        select(t.day, t.event_type, _total(t.event_count))
        .where(*_in_range(start, end), t.event_type.in_(types))
        .group_by(t.day, t.event_type)
    ).all()
    return {(as_date(day), event_type): int(n) for day, event_type, n in rows if n}


@lru_cache(maxsize=8)
def _period_counts_statement(with_months: bool):
    rows = _months_then_edges(AnalyticsDailyTotal, AnalyticsMonthlyTotal, ("event_type", "event_count"), with_months).subquery()
    return (
        select(rows.c.period, rows.c.event_type, _total(rows.c.event_count))
        .where(rows.c.event_type.in_(bindparam("types", expanding=True)))
        .group_by(rows.c.period, rows.c.event_type)
    )


def counts_by_month_and_day(
    session: Session, start: dt.date, end: dt.date, months: list[dt.date], types: list[str]
) -> tuple[dict[tuple[dt.date, str], int], dict[tuple[dt.date, str], int]]:
    """Events per (month, type) for `months` (consecutive whole months inside the range), and per
    (day, type) for the range's other days, in one round trip."""
    span = (months[0], next_month(months[-1])) if months else (start, start)
    with_months, params = _span_params(start, end, span)
    result = session.connection().execute(_period_counts_statement(with_months), {**params, "types": list(types)}).all()
    is_month = set(months)
    by_month, by_day = {}, {}
    for period, event_type, n in result:
        if not n:
            continue
        period = as_date(period)
        # A month row's period is the 1st of a month in `months`; a day row's never is one of
        # those (its days lie outside the span).
        (by_month if period in is_month else by_day)[(period, event_type)] = int(n)
    return by_month, by_day


def forecast_series_by_day(
    session: Session, start: dt.date, end: dt.date, currency: str, table=AnalyticsDailyTotal
) -> dict[dt.date, tuple[int, int, int]]:
    """(revenue in `currency`, user_signup count, payments in `currency`) per day with any."""
    t = table
    is_signup = t.event_type == EventType.USER_SIGNUP
    is_payment = and_(t.event_type == PAID, t.currency == currency)
    rows = session.connection().execute(
        select(
            t.day,
            _total(case((is_payment, t.revenue_minor_units), else_=0)),
            _total(case((is_signup, t.event_count), else_=0)),
            _total(case((is_payment, t.event_count), else_=0)),
        )
        .where(t.day >= start, t.day <= end, or_(is_signup, is_payment))
        .group_by(t.day)
    ).all()
    return {as_date(day): (int(revenue), int(signups), int(payments)) for day, revenue, signups, payments in rows}


def first_event_day(session: Session) -> dt.date | None:
    """The UTC day of the earliest event of any type."""
    t = AnalyticsDailyTotal
    # ORDER BY the key's first column + LIMIT 1 stops at the first row; MIN() with this
    # WHERE makes MariaDB scan the whole table.
    value = session.connection().scalar(select(t.day).where(t.event_count > 0).order_by(t.day).limit(1))
    return as_date(value) if value is not None else None


@lru_cache(maxsize=8)
def _top_plans_statement(with_months: bool):
    rows = _months_then_edges(
        AnalyticsDailyPlan, AnalyticsMonthlyPlan, ("plan_id", "currency", "payments", "revenue_minor_units"), with_months
    ).subquery()
    revenue = _total(rows.c.revenue_minor_units).label("revenue")
    payments = _total(rows.c.payments).label("payments")
    ranked = (
        select(rows.c.plan_id, rows.c.currency, revenue, payments)
        .group_by(rows.c.plan_id, rows.c.currency)
        .order_by(revenue.desc(), payments.desc(), rows.c.plan_id, rows.c.currency)
        .limit(bindparam("limit"))
        .subquery()
    )
    return (
        select(ranked, Plan.name)
        .join(Plan, Plan.id == ranked.c.plan_id, isouter=True)
        .order_by(ranked.c.revenue.desc(), ranked.c.payments.desc(), ranked.c.plan_id, ranked.c.currency)
    )


def top_plans(session: Session, days: DayRange, limit: int = 10) -> list[PlanRevenue]:
    """Plans by revenue: whole months from the monthly rollup, the edge days from the daily one."""
    with_months, params = _span_params(days.start, days.end)
    result = session.connection().execute(_top_plans_statement(with_months), {**params, "limit": limit}).all()
    return [PlanRevenue(row.plan_id, row.name, row.currency, int(row.revenue), int(row.payments)) for row in result]
