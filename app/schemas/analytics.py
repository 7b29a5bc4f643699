"""Typed answers of the admin analytics endpoints, field for field as CONTRACT.md writes them."""

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.forecast import GrowthComparison, MetricModels, ProjectionBacktest, ProjectionTotals, Span

Engine = Literal["sql", "clickhouse"]


class EngineInfo(BaseModel):
    """Which engine answered, and how fresh its data is (None: the shop's own database, always current)."""

    engine: Engine = "sql"
    fresh_as_of: dt.datetime | None = None


class ReportScope(BaseModel):
    """Whose events and which days a report covers."""

    tz: str = Field("UTC", description="the IANA zone whose local calendar days the range and buckets are")
    exclude_internal: bool = Field(False, description="true: admins' and ANALYTICS_EXCLUDE_EMAILS users' events are left out")
    incomplete_day: dt.date | None = Field(
        None, description="today (in `tz`) when the range includes it: its figures are the day so far"
    )


class Conversion(BaseModel):
    """Four conversion ratios of the funnel's steps (next over previous, activation over signup), null when the denominator is 0."""

    signup_to_checkout: float | None
    checkout_to_payment: float | None
    payment_to_activation: float | None
    signup_to_activation: float | None


class PreviousPeriod(BaseModel):
    start_date: dt.date
    end_date: dt.date
    counts: dict[str, int]
    revenue: dict[str, int]
    compares: Literal["whole_days", "same_elapsed_time"] = Field(
        "whole_days",
        description="same_elapsed_time: the range includes today, so the previous period stops at the same time "
        "after its start as now is after the range's start (like with like)",
    )
    cut_at: dt.datetime | None = Field(None, description="the instant (UTC) the previous period was cut at, when cut")


class TopPlan(BaseModel):
    plan_id: int
    plan_name: str | None
    currency: str
    revenue_minor_units: int
    payments: int


class Overview(ReportScope, EngineInfo):
    start_date: dt.date
    end_date: dt.date
    clamped: bool
    counts: dict[str, int] = Field(description="events in the range per shown type")
    unique_users: dict[str, int] = Field(description="exact distinct users per shown type")
    conversion: Conversion = Field(
        description="the ordered funnel of the people who signed up in the range (by user, each step within 14 days "
        "of the signup): step 2 / step 1, 3 / 2, 4 / 3 and 4 / 1, as GET /admin/analytics/funnel counts them"
    )
    event_count_ratios: Conversion = Field(description="ratios of the range's event counts (what `conversion` held before)")
    conversion_basis: Literal["ordered_funnel_by_user_window_14d"] = Field(description="what `conversion` is computed from")
    revenue: dict[str, int] = Field(description="payment_succeeded amounts per currency, minor units")
    previous: PreviousPeriod
    top_plans: list[TopPlan]


class Bucket(BaseModel):
    date: dt.date
    counts: dict[str, int]
    revenue: dict[str, int]


class BreakdownValue(BaseModel):
    """One value of a breakdown: its events, exact distinct users and payment revenue in the range."""

    value: str = Field(description='plan name, region, currency, signup period start, "(none)" or "Other"')
    key: int | str | None = Field(description="plan id for plan; the value itself otherwise; null for (none) and Other")
    counts: dict[str, int]
    unique_users: dict[str, int]
    revenue: dict[str, int]


class OverviewBreakdown(BaseModel):
    by: str
    values: list[BreakdownValue] = Field(description="the 10 values with the most events of the shown types, then Other")


class BreakdownSeries(BaseModel):
    """One breakdown value's buckets (the same buckets as the timeseries)."""

    value: str
    key: int | str | None
    buckets: list[Bucket]


class Timeseries(ReportScope, EngineInfo):
    start_date: dt.date
    end_date: dt.date
    clamped: bool
    event_types: list[str]
    buckets: list[Bucket]


class HistoryDay(BaseModel):
    date: dt.date
    revenue_minor_units: int
    signups: int
    payments: int = Field(0, description="payment_succeeded events in the asked currency")


class ForecastDay(BaseModel):
    date: dt.date
    revenue_minor_units: int
    signups: float = Field(description="the unrounded mean of the history's signups")
    revenue_lower: int | None = None
    revenue_upper: int | None = None
    signups_lower: float | None = None
    signups_upper: float | None = None
    payments: float | None = None
    payments_lower: float | None = None
    payments_upper: float | None = None


class Projection(ReportScope, EngineInfo):
    method: str
    window_days: int
    horizon_days: int
    currency: str
    as_of: dt.date
    history: list[HistoryDay]
    forecast: list[ForecastDay]
    projected_revenue_minor_units: int
    projected_signups: float
    growth_rate: float | None
    note: str | None
    level: int = 80
    last_complete_day: dt.date | None = None
    projected_payments: float = 0
    totals: ProjectionTotals | None = None
    models: MetricModels | None = None
    training: Span | None = None
    backtest: ProjectionBacktest | None = None
    growth_rate_compares: GrowthComparison | None = None
