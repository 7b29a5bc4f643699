"""Finance figures for the analytics reports, from the daily rollups and `fx_rates` only.

Gross revenue is `payment_succeeded` amounts, refunds are `payment_refunded` amounts,
net = gross − refunds, per original currency, exactly as the rollups hold them.

Conversion into one currency: every (day, currency) rollup amount is converted at the
ECB rate in force that day (the day's rate, or the last published before it), the
day's converted amounts are summed unrounded and rounded half-up to a whole minor unit
once per day; range totals are the sums of those daily figures, so a timeseries adds up
to the overview exactly. Amounts without a rate on or before their day are left out and
listed under `unconverted`, never counted as zero. Top plans: one rounding per
(plan, currency) row over its unrounded daily conversions.
"""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.models.analytics import EventType
from app.models.plan import Plan
from app.schemas.analytics import Overview
from app.schemas.finance import ConvertedTotals, FinanceBucket, FinanceOverview, FinanceTimeseries, FinanceTopPlan
from app.services import analytics, fx, report_breakdown, rollup_repo, zones
from app.services.dates import DayRange, as_date, periods
from app.services.report_engine import ReportEngine
from app.services.unique_users import count_unique_users

PAID, REFUNDED, FAILED = EventType.PAYMENT_SUCCEEDED.value, EventType.PAYMENT_REFUNDED.value, EventType.PAYMENT_FAILED.value
MONEY_TYPES = (PAID, REFUNDED, FAILED)


def check_currency(session: Session, currency: str | None) -> str | None:
    """The asked currency upper-cased, if `fx_rates` has rates for it; otherwise 422."""
    if currency is None:
        return None
    code = currency.strip().upper()
    known = fx.known_currencies(session)
    if code not in known:
        hint = f"one of {', '.join(known)}" if known else "none loaded yet: run `python -m app fx-rates load`"
        raise InvalidInput(f"currency: {currency!r} has no exchange rates ({hint})")
    return code


def money_rows(session: Session, days: DayRange, engine: ReportEngine | None = None) -> dict[tuple[dt.date, str, str], tuple[int, int]]:
    """(day, type, currency) → (events, amount) for payments, refunds and failed payments: from the
    engine when it answers per-day rows itself (another zone, internal users left out), else the rollups."""
    if engine is not None and hasattr(engine, "rows_by_day"):
        return engine.rows_by_day(days, list(MONEY_TYPES))
    return rollup_repo.rows_by_day(session, days, list(MONEY_TYPES))


def plan_rows(session: Session, days: DayRange, engine: ReportEngine | None = None) -> list[tuple]:
    """(day, plan id, currency, payments, revenue) rows, from the engine when it answers them itself."""
    if engine is not None and hasattr(engine, "plan_rows_by_day"):
        return engine.plan_rows_by_day(days)
    return rollup_repo.plan_rows_by_day(session, days)

def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _avg(total: int, count: int) -> int | None:
    return fx.round_minor(Decimal(total) / count) if count else None


class DailyConversion:
    """Per day: converted gross and refunds (rounded once per day), and what could not be converted."""

    def __init__(self, session: Session, rows: dict, days: DayRange, target: str):
        currencies = {c for (_, kind, c) in rows if c and kind in (PAID, REFUNDED)} | {target}
        self.book = fx.rate_book(session, currencies, days.start, days.end)
        self.target = target
        self.gross: dict[dt.date, int] = {}
        self.refunds: dict[dt.date, int] = {}
        self.payments = 0
        self.unconverted: dict[str, int] = defaultdict(int)
        self.rate_days: set[dt.date] = set()
        self.max_rate_age_days = 0
        exact: dict[tuple[dt.date, str], Decimal] = defaultdict(Decimal)
        for (day, kind, currency), (count, amount) in sorted(rows.items()):
            if kind == FAILED or not currency:
                continue
            value = self.book.convert(amount, currency, target, day)
            if value is None:
                self.unconverted[currency] += amount
                continue
            exact[(day, kind)] += value
            if kind == PAID:
                self.payments += count
            if currency != target:
                used = [self.book.rate(code, day)[0] for code in (currency, target)]
                self.rate_days.update(used)
                self.max_rate_age_days = max(self.max_rate_age_days, *((day - published).days for published in used))
        for (day, kind), value in exact.items():
            (self.gross if kind == PAID else self.refunds)[day] = fx.round_minor(value)

    def net(self, day: dt.date) -> int:
        return self.gross.get(day, 0) - self.refunds.get(day, 0)


def overview_report(
    session: Session, source: Session | ReportEngine, days: DayRange, event_types: list[str] | None,
    currency: str | None, *, today: dt.date | None = None, scope: analytics.Scope = analytics.UTC_SCOPE,
    breakdown: str | None = None,
) -> FinanceOverview:
    """GET /admin/analytics/overview: the overview and its finance figures, from one read of the range's totals."""
    engine = analytics.scoped_engine(session, source, scope, today)
    totals = analytics.period_totals(session, engine, days, scope)
    body = analytics.overview(
        engine, days, event_types, session=session, today=today, current=totals.current, previous=totals.previous,
        scope=scope, cut_at=totals.cut_at,
    )
    extended = extend_overview(session, body, days, currency, totals.current.amounts, engine=engine)
    if breakdown:
        start_at, end_before = zones.day_span(days.start, days.end, zones.zone(scope.zone_name))
        extended.breakdown = report_breakdown.overview_breakdown(
            session, breakdown, start_at, end_before, list(body.counts), tz=scope.zone_name,
            excluded_user_ids=scope.internal_ids or frozenset(),
        )
    return extended


def extend_overview(
    session: Session, overview: Overview, days: DayRange, currency: str | None,
    amounts: dict[tuple[str, str], tuple[int, int]] | None = None, *, engine: ReportEngine | None = None,
) -> FinanceOverview:
    """The overview plus refunds, net revenue, failed payments, AOV and (with `currency`) converted totals.

    `amounts`: the range's (type, currency) → (events, amount) when the caller has them (the SQL engine's totals).
    """
    # Per-day rows only when converting (each day has its rate); else months and edge days.
    rows = money_rows(session, days, engine) if currency else None
    if rows is None and amounts is None:
        rows = money_rows(session, days, engine)
    if rows is not None:
        by_kind: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for (_, kind, cur), (count, amount) in rows.items():
            by_kind[(kind, cur)][0] += count
            by_kind[(kind, cur)][1] += amount
        sums = {key: (n, amount) for key, (n, amount) in by_kind.items()}
    else:
        sums = {key: value for key, value in amounts.items() if key[0] in MONEY_TYPES}
    gross, refunds, payments = defaultdict(int), defaultdict(int), defaultdict(int)
    failed = 0
    for (kind, cur), (count, amount) in sums.items():
        if kind == PAID and cur:
            gross[cur] += amount
            payments[cur] += count
        elif kind == REFUNDED and cur:
            refunds[cur] += amount
        elif kind == FAILED:
            failed += count
    currencies = sorted(set(gross) | set(refunds))
    succeeded = sum(payments.values())
    converted = None
    top = overview.top_plans
    if currency:
        conversion = DailyConversion(session, rows, days, currency)
        paying = (engine.unique_users(days, [PAID]) if engine is not None else count_unique_users(session, days, [PAID]))[PAID]
        total_gross = sum(conversion.gross.values())
        total_refunds = sum(conversion.refunds.values())
        converted = ConvertedTotals(
            currency=currency,
            gross_revenue_minor_units=total_gross,
            refunds_minor_units=total_refunds,
            net_revenue_minor_units=total_gross - total_refunds,
            payments=conversion.payments,
            average_order_value_minor_units=_avg(total_gross, conversion.payments),
            paying_users=paying,
            revenue_per_paying_user_minor_units=_avg(total_gross, paying),
            unconverted=dict(sorted(conversion.unconverted.items())),
            rates_through=max(conversion.rate_days) if conversion.rate_days else None,
            oldest_rate_age_days=conversion.max_rate_age_days,
            source=fx.SOURCE,
        )
        top = converted_top_plans(session, days, conversion.book, currency, engine=engine)
    body = {name: getattr(overview, name) for name in type(overview).model_fields}
    body["top_plans"] = top
    return FinanceOverview(
        **body,
        refunds={c: refunds.get(c, 0) for c in currencies},
        net_revenue={c: gross.get(c, 0) - refunds.get(c, 0) for c in currencies},
        payments_by_currency={c: payments.get(c, 0) for c in currencies},
        average_order_value={c: _avg(gross[c], payments[c]) for c in currencies if payments.get(c)},
        payments_failed=failed,
        payment_failure_rate=_ratio(failed, failed + succeeded),
        converted=converted,
    )


def converted_top_plans(
    session: Session, days: DayRange, book: fx.RateBook, target: str, limit: int = 10, *, engine: ReportEngine | None = None
) -> list[FinanceTopPlan]:
    """(plan, currency) rows ranked by revenue converted into `target` (unconvertible rows last)."""
    rows = plan_rows(session, days, engine)
    currencies = {currency for _, _, currency, _, _ in rows} | {target}
    if not currencies <= set(book.by_currency) | {target}:
        book = fx.rate_book(session, currencies, days.start, days.end)
    totals: dict[tuple[int, str], list] = {}
    for day, plan_id, currency, count, amount in rows:
        entry = totals.setdefault((plan_id, currency), [0, 0, Decimal(0), True])
        entry[0] += int(amount)
        entry[1] += int(count)
        value = book.convert(int(amount), currency, target, as_date(day))
        if value is None:
            entry[3] = False
        else:
            entry[2] += value
    ranked = []
    for (plan_id, currency), (revenue, count, converted, complete) in totals.items():
        value = fx.round_minor(converted) if complete else None
        ranked.append((value, revenue, count, plan_id, currency))
    ranked.sort(key=lambda r: (r[0] is None, -(r[0] or 0), -r[2], r[3], r[4]))
    names = dict(session.execute(select(Plan.id, Plan.name).where(Plan.id.in_([r[3] for r in ranked[:limit]]))).all())
    return [
        FinanceTopPlan(plan_id=plan_id, plan_name=names.get(plan_id), currency=currency, revenue_minor_units=revenue,
                       payments=count, converted_revenue_minor_units=value)
        for value, revenue, count, plan_id, currency in ranked[:limit]
    ]


def timeseries_report(
    session: Session, source: Session | ReportEngine, days: DayRange, event_types: list[str] | None, currency: str | None,
    interval: str = "day", *, scope: analytics.Scope = analytics.UTC_SCOPE, breakdown: str | None = None,
) -> FinanceTimeseries:
    """GET /admin/analytics/timeseries: per day, ISO week or month, the counts and revenue plus refunds, net
    revenue, failed payments and failure rate; converted figures with `currency`.

    The SQL engine's day rows carry the money facts, so the days are read once (again per
    currency only to convert); another engine's money facts come from the shop's rollups.
    A week's or month's bucket sums its days in the range (converted figures: the days'
    rounded figures), so the buckets of every interval add up to the same totals.
    """
    engine = analytics.scoped_engine(session, source, scope)
    shown = event_types or analytics.ALL_TYPES
    rows = {row.day: row for row in engine.daily(days, shown)}
    if all(row.refunds is not None for row in rows.values()):
        per_day = {day: (row.refunds, row.payments_failed, row.payments) for day, row in rows.items()}
        money = money_rows(session, days, engine) if currency else None
    else:
        money = money_rows(session, days, engine)
        collected: dict[dt.date, list] = defaultdict(lambda: [{}, 0, 0])
        for (day, kind, cur), (count, amount) in money.items():
            if kind == REFUNDED and cur:
                collected[day][0][cur] = amount
            elif kind == FAILED:
                collected[day][1] += count
            elif kind == PAID:
                collected[day][2] += count
        per_day = {day: (dict(sorted(r.items())), failed, paid) for day, (r, failed, paid) in collected.items()}
    conversion = DailyConversion(session, money, days, currency) if currency else None
    nothing = ({}, 0, 0)
    buckets = _day_buckets(days, shown, rows, per_day, conversion) if interval == "day" else []
    for period in periods(days, interval) if interval != "day" else []:
        counts = dict.fromkeys(shown, 0)
        revenue, refunds, net = defaultdict(int), defaultdict(int), defaultdict(int)
        failed = paid = 0
        for day in period.each_day():
            row = rows.get(day)
            day_refunds, day_failed, day_paid = per_day.get(day, nothing)
            if row:
                for name in shown:
                    counts[name] += row.counts[name]
                for cur, amount in row.revenue.items():
                    revenue[cur] += amount
                    net[cur] += amount
            for cur, amount in day_refunds.items():
                refunds[cur] += amount
                net[cur] -= amount
            failed += day_failed
            paid += day_paid
        extra = {}
        if conversion:
            gross = sum(conversion.gross.get(day, 0) for day in period.each_day())
            refunded = sum(conversion.refunds.get(day, 0) for day in period.each_day())
            extra = {
                "converted_revenue_minor_units": gross,
                "converted_refunds_minor_units": refunded,
                "converted_net_revenue_minor_units": gross - refunded,
            }
        buckets.append(FinanceBucket(
            date=period.first_day, partial=period.partial, counts=counts, revenue=dict(sorted(revenue.items())),
            refunds=dict(sorted(refunds.items())), net_revenue=dict(sorted(net.items())),
            payments_failed=failed, payment_failure_rate=_ratio(failed, failed + paid), **extra,
        ))
    series = None
    if breakdown:
        start_at, end_before = zones.day_span(days.start, days.end, zones.zone(scope.zone_name))
        series = report_breakdown.timeseries_series(
            session, breakdown, start_at, end_before, shown, tz=scope.zone_name, excluded_user_ids=scope.internal_ids or frozenset(),
            buckets=[(period.first_day, period.start, period.end) for period in periods(days, interval)],
        )
    return FinanceTimeseries(
        **scope.fields(days),
        engine=engine.name, fresh_as_of=engine.fresh_as_of(), start_date=days.start, end_date=days.end,
        clamped=days.clamped, interval=interval, event_types=shown, buckets=buckets, currency=currency, series=series,
    )


def _day_buckets(days: DayRange, shown: list[str], rows: dict, per_day: dict, conversion) -> list[FinanceBucket]:
    """One bucket per day, straight from its row (the usual timeseries: no period sums to build)."""
    zeros, nothing = dict.fromkeys(shown, 0), ({}, 0, 0)
    buckets = []
    for day in days.each_day():
        row = rows.get(day)
        counts, revenue = (row.counts, row.revenue) if row else (dict(zeros), {})
        refunds, failed, paid = per_day.get(day, nothing)
        net = {c: revenue.get(c, 0) - refunds.get(c, 0) for c in sorted({*revenue, *refunds})} if refunds else dict(revenue)
        extra = {}
        if conversion:
            extra = {
                "converted_revenue_minor_units": conversion.gross.get(day, 0),
                "converted_refunds_minor_units": conversion.refunds.get(day, 0),
                "converted_net_revenue_minor_units": conversion.net(day),
            }
        buckets.append(FinanceBucket(
            date=day, counts=counts, revenue=revenue, refunds=refunds, net_revenue=net,
            payments_failed=failed, payment_failure_rate=_ratio(failed, failed + paid), **extra,
        ))
    return buckets


def converted_revenue_by_day(
    session: Session, start: dt.date, end: dt.date, target: str, engine: ReportEngine | None = None
) -> dict[dt.date, int]:
    """Every currency's payment revenue per day converted into `target` (rounded once per day), for projections."""
    days = DayRange(start, end)
    rows = {k: v for k, v in money_rows(session, days, engine).items() if k[1] == PAID}
    return DailyConversion(session, rows, days, target).gross


class ConvertedRevenueEngine:
    """A report engine whose daily revenue in a currency is every currency converted into it (for projections)."""

    def __init__(self, session: Session, engine: ReportEngine):
        self.session = session
        self.engine = engine

    def __getattr__(self, name: str):
        return getattr(self.engine, name)

    def forecast_series_by_day(self, start: dt.date, end: dt.date, currency: str) -> dict[dt.date, tuple[int, int, int]]:
        """(revenue of every currency converted into `currency`, signups, payments in every currency) per day."""
        own = self.engine.forecast_series_by_day(start, end, currency)
        rows = money_rows(self.session, DayRange(start, end), self.engine)
        revenue = DailyConversion(self.session, {k: v for k, v in rows.items() if k[1] == PAID}, DayRange(start, end), currency).gross
        payments: dict[dt.date, int] = defaultdict(int)
        for (day, kind, _), (n, _) in rows.items():
            if kind == PAID and n:
                payments[day] += n
        days = sorted(set(own) | set(revenue) | set(payments))
        return {day: (revenue.get(day, 0), own.get(day, (0, 0, 0))[1], payments.get(day, 0)) for day in days}
