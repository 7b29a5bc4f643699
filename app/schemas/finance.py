"""Finance additions to the analytics answers: refunds, net revenue, failed payments, converted totals."""

import datetime as dt

from typing import ClassVar, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from app.schemas.analytics import BreakdownSeries, Bucket, Overview, OverviewBreakdown, Projection, Timeseries, TopPlan


class OmitsUnasked(BaseModel):
    """Leaves out the fields that only answer an option (`currency=`, `convert=`) when it was not used."""

    optional_fields: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_unasked(self, handler: SerializerFunctionWrapHandler) -> dict:
        data = handler(self)
        for name in self.optional_fields:
            if name in data and (data[name] is None or data[name] is False):
                data.pop(name, None)
        return data


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


class FinanceOverview(OmitsUnasked, Overview):
    optional_fields: ClassVar[tuple[str, ...]] = ("breakdown",)
    refunds: dict[str, int] = Field(description="payment_refunded amounts per currency, minor units")
    net_revenue: dict[str, int] = Field(description="revenue - refunds per currency, minor units")
    payments_by_currency: dict[str, int]
    average_order_value: dict[str, int] = Field(description="revenue / payments per currency, rounded half up")
    payments_failed: int = Field(description="failed payment attempts (payment_failed events) in the range")
    payment_failure_rate: float | None = Field(description="payments_failed / (payments_failed + payment_succeeded)")
    converted: ConvertedTotals | None = None
    # Ranked by converted revenue (and carrying it) when a currency is asked for; the contract's rows otherwise.
    top_plans: list[FinanceTopPlan | TopPlan]
    breakdown: OverviewBreakdown | None = Field(None, description="with `breakdown=`: the range per value")


Interval = Literal["day", "week", "month"]
CONVERTED_BUCKET_FIELDS = ("converted_revenue_minor_units", "converted_refunds_minor_units", "converted_net_revenue_minor_units")


class FinanceBucket(Bucket):
    """A day's, week's or month's bucket; the converted_* figures are there only when a currency was asked for."""

    partial: bool = Field(False, description="the range cuts the week or month (absent with interval=day)")
    refunds: dict[str, int] = {}
    net_revenue: dict[str, int] = {}
    payments_failed: int = 0
    payment_failure_rate: float | None = None
    converted_revenue_minor_units: int | None = None
    converted_refunds_minor_units: int | None = None
    converted_net_revenue_minor_units: int | None = None


class FinanceTimeseries(Timeseries):
    interval: Interval = Field("day", description="day, ISO week from Monday or calendar month; a bucket's date is its first day")
    currency: str | None = Field(None, description="the currency of the converted_* figures, when asked")
    buckets: list[FinanceBucket]
    series: list[BreakdownSeries] | None = Field(None, description="with `breakdown=`: the buckets per value")

    @model_serializer(mode="wrap")
    def _omit_unasked(self, handler: SerializerFunctionWrapHandler) -> dict:
        # Once for the whole series, not a serializer per bucket: a year is 365 buckets.
        data = handler(self)
        if self.series is None:
            data.pop("series", None)
        unasked = (("partial",) if self.interval == "day" else ()) + (CONVERTED_BUCKET_FIELDS if self.currency is None else ())
        if self.currency is None:
            data.pop("currency", None)
        if unasked:
            for bucket in data["buckets"]:
                for name in unasked:
                    bucket.pop(name, None)
        return data


class FinanceProjection(OmitsUnasked, Projection):
    optional_fields: ClassVar[tuple[str, ...]] = ("converted",)
    converted: bool = Field(False, description="true: revenue is every currency converted into `currency` (ECB rates)")
