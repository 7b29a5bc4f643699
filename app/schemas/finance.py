"""Finance additions to the analytics answers: refunds, net revenue, failed payments, converted totals."""

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from app.schemas.analytics import BreakdownSeries, Overview, OverviewBreakdown, Projection, Timeseries, TopPlan


def _unasked(value) -> bool:
    """A field that only answers an option (`currency=`, `convert=`, `breakdown=`, a week or month
    interval) is left out when the option was not used. Decided per field while serializing, so a
    365-bucket series is written to JSON in one pass with no Python code per bucket."""
    return value is None or value is False


def _is_none(value) -> bool:
    return value is None


class ConvertedTotals(BaseModel):
    """The range in one currency at ECB reference rates (each day at its own rate, rounded once per day)."""

    currency: str
    gross_revenue_minor_units: int
    refunds_minor_units: int
    net_revenue_minor_units: int
    payments: int = Field(description="payments whose amount could be converted")
    average_order_value_minor_units: int | None = Field(description="converted gross revenue / payments")
    paying_users: int = Field(description="exact distinct users with a payment_succeeded in the range")
    revenue_per_paying_user_minor_units: int | None = Field(description="converted gross revenue / paying users")
    unconverted: dict[str, int] = Field(
        description="per original currency, amounts (payments and refunds) left out: no rate on or before their day"
    )
    rates_through: dt.date | None = Field(description="the last ECB publication day among the rates used")
    oldest_rate_age_days: int = Field(
        description="the most days between an amount's day and the publication its rate came from "
        "(up to 4 over weekends and holidays; more: the rates are out of date, load newer ones)"
    )
    source: str


class FinanceTopPlan(TopPlan):
    converted_revenue_minor_units: int | None = None


class FinanceOverview(Overview):
    refunds: dict[str, int] = Field(description="payment_refunded amounts per currency, minor units")
    net_revenue: dict[str, int] = Field(description="revenue - refunds per currency, minor units")
    payments_by_currency: dict[str, int]
    average_order_value: dict[str, int] = Field(description="revenue / payments per currency, rounded half up")
    payments_failed: int = Field(description="failed payment attempts (payment_failed events) in the range")
    payment_failure_rate: float | None = Field(description="payments_failed / (payments_failed + payment_succeeded)")
    converted: ConvertedTotals | None = None
    # Ranked by converted revenue (and carrying it) when a currency is asked for; the contract's rows otherwise.
    top_plans: list[FinanceTopPlan | TopPlan]
    breakdown: OverviewBreakdown | None = Field(None, description="with `breakdown=`: the range per value", exclude_if=_unasked)


Interval = Literal["day", "week", "month"]


@dataclass(slots=True)
class FinanceBucket:
    """A day's, week's or month's bucket; the converted_* figures are there only when a currency was asked for.

    A plain dataclass with the same fields and JSON as the pydantic `Bucket` plus the money facts:
    a year is 365 of them, and a dataclass instance is taken as it is (not validated again) and
    written to JSON by pydantic-core, which is most of a 365-day timeseries' cost otherwise.
    """

    date: dt.date
    counts: dict[str, int]
    revenue: dict[str, int]
    partial: Annotated[
        bool | None, Field(description="the range cuts the week or month (absent with interval=day)", exclude_if=_is_none)
    ] = None
    refunds: dict[str, int] = field(default_factory=dict)
    net_revenue: dict[str, int] = field(default_factory=dict)
    payments_failed: int = 0
    payment_failure_rate: float | None = None
    converted_revenue_minor_units: Annotated[int | None, Field(exclude_if=_is_none)] = None
    converted_refunds_minor_units: Annotated[int | None, Field(exclude_if=_is_none)] = None
    converted_net_revenue_minor_units: Annotated[int | None, Field(exclude_if=_is_none)] = None


class FinanceTimeseries(Timeseries):
    interval: Interval = Field("day", description="day, ISO week from Monday or calendar month; a bucket's date is its first day")
    currency: str | None = Field(None, description="the currency of the converted_* figures, when asked", exclude_if=_is_none)
    buckets: list[FinanceBucket]
    series: list[BreakdownSeries] | None = Field(None, description="with `breakdown=`: the buckets per value", exclude_if=_is_none)


class FinanceProjection(Projection):
    converted: bool = Field(False, description="true: revenue is every currency converted into `currency` (ECB rates)", exclude_if=_unasked)
