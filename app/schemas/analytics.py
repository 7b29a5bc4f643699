"""Typed answers of the admin analytics endpoints, field for field as CONTRACT.md writes them."""

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

Engine = Literal["sql", "clickhouse"]


class EngineInfo(BaseModel):
    """Which engine answered, and how fresh its data is (None: the shop's own database, always current)."""

    engine: Engine = "sql"
    fresh_as_of: dt.datetime | None = None


class Conversion(BaseModel):
    """Ratios of event counts in the range (next step over previous), null when the denominator is 0."""

    signup_to_checkout: float | None
    checkout_to_payment: float | None
    payment_to_activation: float | None
    signup_to_activation: float | None


class PreviousPeriod(BaseModel):
    start_date: dt.date
    end_date: dt.date
    counts: dict[str, int]
    revenue: dict[str, int]


class TopPlan(BaseModel):
    plan_id: int
    plan_name: str | None
    currency: str
    revenue_minor_units: int
    payments: int


class Overview(EngineInfo):
    start_date: dt.date
    end_date: dt.date
    clamped: bool
    counts: dict[str, int] = Field(description="events in the range per shown type")
    unique_users: dict[str, int] = Field(description="exact distinct users per shown type")
    conversion: Conversion
    revenue: dict[str, int] = Field(description="payment_succeeded amounts per currency, minor units")
    previous: PreviousPeriod
    top_plans: list[TopPlan]


class Bucket(BaseModel):
    date: dt.date
    counts: dict[str, int]
    revenue: dict[str, int]


class Timeseries(EngineInfo):
    start_date: dt.date
    end_date: dt.date
    clamped: bool
    event_types: list[str]
    buckets: list[Bucket]


class HistoryDay(BaseModel):
    date: dt.date
    revenue_minor_units: int
    signups: int


class ForecastDay(BaseModel):
    date: dt.date
    revenue_minor_units: int
    signups: float = Field(description="the unrounded mean of the history's signups")


class Projection(EngineInfo):
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
