"""Admin analytics: the ordered funnel of people and repeat-buyer retention."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from app.api.admin import DateParam, parse_day
from app.api.deps import DB, AdminUser, AppSettings
from app.api.report_source import report_source
from app.api.responses import error_responses
from app.db import utc_now
from app.errors import InvalidInput
from app.schemas.funnel import FunnelResponse, RetentionResponse
from app.services import zones
from app.services.clickhouse_funnel import ClickHouseFunnelEngine
from app.services.clickhouse_retention import clickhouse_retention
from app.services.dates import resolve_range
from app.services.funnel_query import BREAKDOWNS, ENGINE, FunnelQuery
from app.services.internal_users import internal_user_ids
from app.services.retention import retention as retention_report

router = APIRouter(prefix="/admin/analytics", tags=["admin analytics"], responses=error_responses(401, 403, 422))

TzParam = Annotated[str | None, Query(description="IANA zone; the range's days are its local days (default ANALYTICS_TIMEZONE)", max_length=64)]
ExcludeParam = Annotated[bool, Query(description="leave out admins and ANALYTICS_EXCLUDE_EMAILS")]


def _range(settings, start_date, end_date, tz):
    zone_name = tz or settings.analytics_timezone
    zone = zones.zone(zone_name)
    start, end = parse_day(start_date, "start_date"), parse_day(end_date, "end_date")
    if start and end and start > end:
        raise InvalidInput(f"start_date {start} is after end_date {end}")
    now = utc_now()
    today = zones.local_day(now, zone)
    return zone_name, resolve_range(start, end, default_days=settings.analytics_default_range_days, today=today), now


@router.get("/funnel", response_model=FunnelResponse)
def funnel(
    session: DB,
    admin: AdminUser,
    settings: AppSettings,
    start_date: DateParam = None,
    end_date: DateParam = None,
    by: Annotated[Literal["user", "order"], Query(description="user: signups enter; order: checkouts enter")] = "user",
    window_days: Annotated[int, Query(ge=1, le=90, description="conversion window from the entry, inclusive")] = 14,
    tz: TzParam = None,
    breakdown: Annotated[Literal[BREAKDOWNS] | None, Query(description="one funnel per value: top 10, then Other")] = None,
    exclude_internal: ExcludeParam = False,
    steps: Annotated[Literal["verified"] | None, Query(description="verified: add the login-code step after signup")] = None,
) -> FunnelResponse:
    """Ordered funnel of people (or orders): per step count, conversion, dropped, in progress, time to convert; from ClickHouse when ANALYTICS_ENGINE=clickhouse (steps=verified: always the shop's database)."""
    zone_name, days, now = _range(settings, start_date, end_date, tz)
    query = FunnelQuery(
        start=days.start, end=days.end, clamped=days.clamped, by=by, window_days=window_days, tz=zone_name,
        breakdown=breakdown, exclude_internal=exclude_internal, with_verified=steps == "verified",
        internal_user_ids=frozenset(internal_user_ids(session, settings)) if exclude_internal else frozenset(),
        now=now,
    )
    if query.chain == "verified":
        # users.verified_at is only in the shop's database (app.services.clickhouse_funnel): engine 'sql' says so.
        return ENGINE.funnel(session, query)
    source = report_source(session, settings)  # 503 or the SQL fallback when ClickHouse cannot answer, as the other reports
    if isinstance(source, Session):
        return ENGINE.funnel(session, query)
    return ClickHouseFunnelEngine(source).funnel(session, query)


@router.get("/retention", response_model=RetentionResponse)
def retention(
    session: DB,
    admin: AdminUser,
    settings: AppSettings,
    start_date: DateParam = None,
    end_date: DateParam = None,
    interval: Annotated[Literal["week", "month"], Query(description="ISO weeks from Monday, or calendar months")] = "week",
    tz: TzParam = None,
    exclude_internal: ExcludeParam = False,
) -> RetentionResponse:
    """Cohorts by first payment: size, and how many paid again in each later period up to the range's end; from ClickHouse when ANALYTICS_ENGINE=clickhouse."""
    zone_name, days, _ = _range(settings, start_date, end_date, tz)
    internal = frozenset(internal_user_ids(session, settings)) if exclude_internal else frozenset()
    scope = dict(interval=interval, start=days.start, end=days.end, tz=zone_name, internal_user_ids=internal,
                 exclude_internal=exclude_internal, clamped=days.clamped)
    source = report_source(session, settings)
    if isinstance(source, Session):
        return retention_report(session, **scope)
    return clickhouse_retention(source, **scope)
