"""Admin analytics: funnel overview, daily timeseries and revenue projections."""

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.api.deps import DB, AdminUser, AppSettings
from app.api.report_source import ReportSource
from app.api.responses import error_responses
from app.db import utc_now
from app.errors import InvalidInput
from app.models.analytics import FUNNEL
from app.schemas.finance import FinanceOverview, FinanceProjection, FinanceTimeseries
from app.services import analytics, finance_reports, report_breakdown, zones
from app.services.dates import INTERVALS, DayRange, resolve_range
from app.services.internal_users import internal_user_ids

router = APIRouter(prefix="/admin/analytics", tags=["admin analytics"], responses=error_responses(401, 403, 422))

EVENT_TYPE_VALUES = [e.value for e in FUNNEL]
EARLIEST_DAY, LATEST_DAY = dt.date(1970, 1, 1), dt.date(2999, 12, 31)
DateParam = Annotated[
    str | None, Query(description="YYYY-MM-DD or an ISO 8601 datetime (UTC when it has no offset)", max_length=40)
]
EventTypesParam = Annotated[
    list[str] | None,
    Query(
        description=f"Repeatable; one of {', '.join(EVENT_TYPE_VALUES)}",
        json_schema_extra={"anyOf": [{"type": "array", "items": {"type": "string", "enum": EVENT_TYPE_VALUES}}, {"type": "null"}]},
    ),
]
ForecastMethod = Literal["moving_average", "seasonal_naive", "ets", "auto"]
BracketEventTypesParam = Annotated[list[str] | None, Query(alias="event_types[]", include_in_schema=False)]
IntervalParam = Annotated[
    str,
    Query(description="day, week (ISO, from Monday) or month: a bucket's date is its first day; partial buckets say so",
          json_schema_extra={"enum": list(INTERVALS)}),
]
CurrencyParam = Annotated[
    str | None,
    Query(pattern="^[A-Za-z]{3}$", description="Also report in this currency at ECB rates (one of the currencies in fx_rates)"),
]
BreakdownParam = Annotated[
    str | None,
    Query(
        description="Also split the range by this attribute: the 10 values with the most events, then Other; events without it are (none)",
        json_schema_extra={"anyOf": [{"type": "string", "enum": list(report_breakdown.BREAKDOWNS)}, {"type": "null"}]},
    ),
]


def parse_day(value: str | None, field: str) -> dt.date | None:
    """The UTC calendar day of a date or datetime parameter."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return _within_bounds(dt.date.fromisoformat(text), field, value)
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{field}: {value!r} is not a date (YYYY-MM-DD) or ISO 8601 datetime") from None
    try:
        day = moment.date() if moment.tzinfo is None else moment.astimezone(dt.UTC).date()
    except OverflowError:
        # e.g. 0001-01-01T00:00+01:00: its UTC day is before year 1, a 500 otherwise.
        raise InvalidInput(f"{field}: {value!r} is outside {EARLIEST_DAY} .. {LATEST_DAY}") from None
    return _within_bounds(day, field, value)


def _within_bounds(day: dt.date, field: str, value: str) -> dt.date:
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise InvalidInput(f"{field}: {value!r} is outside {EARLIEST_DAY} .. {LATEST_DAY}")
    return day


def parse_event_types(*lists: list[str] | None) -> list[str] | None:
    chosen: list[str] = []
    for values in lists:
        for value in values or []:
            for item in value.split(","):
                item = item.strip()
                if item not in EVENT_TYPE_VALUES:
                    raise InvalidInput(f"event_types: {item!r} is not one of {', '.join(EVENT_TYPE_VALUES)}")
                if item not in chosen:
                    chosen.append(item)
    # Funnel order, whatever order they were asked in.
    return [t for t in EVENT_TYPE_VALUES if t in chosen] or None


TzParam = Annotated[
    str | None,
    Query(description="IANA zone: the range and the buckets are its local calendar days (default ANALYTICS_TIMEZONE)", max_length=64),
]
ExcludeInternalParam = Annotated[bool, Query(description="true: leave out admins' and ANALYTICS_EXCLUDE_EMAILS users' events")]


@dataclass(frozen=True)
class RangeQuery:
    """The parameters every range report shares, parsed and checked."""

    days: DayRange
    event_types: list[str] | None
    today: dt.date  # in the scope's zone
    scope: analytics.Scope = analytics.UTC_SCOPE


def report_scope(session: Session, settings, tz: str | None, exclude_internal: bool) -> analytics.Scope:
    """The zone (checked: unknown → 422) and, when excluded, the internal users' ids, at this instant."""
    zone_name = (tz or "").strip() or settings.analytics_timezone
    zones.zone(zone_name)
    internal = frozenset(internal_user_ids(session, settings)) if exclude_internal else None
    return analytics.Scope(zone_name=zone_name, internal_ids=internal, now=utc_now())


def range_query(
    session: DB,
    settings: AppSettings,
    start_date: DateParam = None,
    end_date: DateParam = None,
    event_types: EventTypesParam = None,
    event_types_brackets: BracketEventTypesParam = None,
    tz: TzParam = None,
    exclude_internal: ExcludeInternalParam = False,
) -> RangeQuery:
    start, end = parse_day(start_date, "start_date"), parse_day(end_date, "end_date")
    if start and end and start > end:
        raise InvalidInput(f"start_date {start} is after end_date {end}")
    scope = report_scope(session, settings, tz, exclude_internal)
    today = scope.today
    days = resolve_range(start, end, default_days=settings.analytics_default_range_days, today=today)
    return RangeQuery(days, parse_event_types(event_types, event_types_brackets), today, scope)


Range = Annotated[RangeQuery, Depends(range_query)]


@router.get("/overview", response_model=FinanceOverview)
def overview(
    session: DB, source: ReportSource, admin: AdminUser, query: Range, currency: CurrencyParam = None,
    breakdown: BreakdownParam = None,
) -> FinanceOverview:
    """Funnel counts, unique users, conversions, revenue, refunds and net per currency, failed payments, previous period, top plans; `currency` adds converted totals, `breakdown` the range per value."""
    target = finance_reports.check_currency(session, currency)
    by = report_breakdown.check_breakdown(breakdown)
    return finance_reports.overview_report(
        session, source, query.days, query.event_types, target, today=query.today, scope=query.scope, breakdown=by
    )


@router.get("/timeseries", response_model=FinanceTimeseries, responses={200: {"content": {"text/csv": {}}}})
def timeseries(
    session: DB,
    source: ReportSource,
    admin: AdminUser,
    query: Range,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
    currency: CurrencyParam = None,
    breakdown: BreakdownParam = None,
    interval: IntervalParam = "day",
):
    """Buckets per day, week or month of event counts, revenue, refunds, net and failed payments; `currency` adds converted figures; `breakdown` the buckets per value (JSON only); `format=csv` for a spreadsheet."""
    if interval not in INTERVALS:
        raise InvalidInput(f"interval: {interval!r} is not one of {', '.join(INTERVALS)}")
    target = finance_reports.check_currency(session, currency)
    by = report_breakdown.check_breakdown(breakdown)
    body = finance_reports.timeseries_report(
        session, source, query.days, query.event_types, target, interval, scope=query.scope, breakdown=by
    )
    if format == "csv":
        filename = f"funnel-{body.start_date}-to-{body.end_date}.csv"
        return Response(
            timeseries_csv(body),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return body


def timeseries_csv(body: FinanceTimeseries) -> str:
    """Money columns name their currency and unit: `revenue_USD_minor` is US cents; weeks and months add `partial`."""
    currencies = sorted({c for bucket in body.buckets for c in (*bucket.revenue, *bucket.refunds)})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    converted = [f"{name}_{body.currency}_minor_converted" for name in ("revenue", "refunds", "net")] if body.currency else []
    partial = ["partial"] if body.interval != "day" else []
    writer.writerow(
        ["date", *partial, *body.event_types, *(f"revenue_{c}_minor" for c in currencies), *(f"refunds_{c}_minor" for c in currencies),
         *(f"net_{c}_minor" for c in currencies), "payments_failed", *converted]
    )
    for bucket in body.buckets:
        row = [
            bucket.date.isoformat(),
            *(["true" if bucket.partial else "false"] if partial else []),
            *(bucket.counts[t] for t in body.event_types),
            *(bucket.revenue.get(c, 0) for c in currencies),
            *(bucket.refunds.get(c, 0) for c in currencies),
            *(bucket.revenue.get(c, 0) - bucket.refunds.get(c, 0) for c in currencies),
            bucket.payments_failed,
        ]
        if body.currency:
            row += [bucket.converted_revenue_minor_units, bucket.converted_refunds_minor_units, bucket.converted_net_revenue_minor_units]
        writer.writerow(row)
    return out.getvalue()


@router.get("/projections", response_model=FinanceProjection)
def projections(
    session: DB,
    source: ReportSource,
    admin: AdminUser,
    settings: AppSettings,
    window_days: Annotated[int | None, Query(ge=3, le=90)] = None,
    horizon_days: Annotated[int | None, Query(ge=1, le=30)] = None,
    currency: Annotated[str | None, Query(pattern="^[A-Za-z]{3}$")] = None,
    as_of: DateParam = None,
    method: Annotated[ForecastMethod, Query(description="auto: the lowest backtest error")] = "moving_average",
    level: Annotated[int, Query(ge=50, le=95, description="interval coverage in percent")] = 80,
    convert: Annotated[bool, Query(description="true: forecast every currency's revenue converted into `currency`")] = False,
    tz: TzParam = None,
    exclude_internal: ExcludeInternalParam = False,
) -> FinanceProjection:
    """Forecast of revenue (one currency, or all converted into it), signups and payments with intervals and a backtest."""
    scope = report_scope(session, settings, tz, exclude_internal)
    today = scope.today
    currency = (currency or settings.default_currency).upper()
    engine = analytics.scoped_engine(session, source, scope, today)
    if convert:
        finance_reports.check_currency(session, currency)
        engine = finance_reports.ConvertedRevenueEngine(session, engine)
    body = analytics.projections(
        engine,
        window_days=window_days or settings.analytics_projection_window_days,
        horizon_days=horizon_days or settings.analytics_projection_horizon_days,
        currency=currency,
        as_of=parse_day(as_of, "as_of") or today,
        today=today,
        method=method,
        level=level,
        training_days=settings.analytics_forecast_training_days,
    )
    return FinanceProjection(**{**body.model_dump(), "tz": scope.zone_name, "exclude_internal": scope.exclude_internal}, converted=convert)
