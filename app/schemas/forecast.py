"""Typed parts of the projection that the forecast methods add: intervals, totals, backtest."""

import datetime as dt

from pydantic import BaseModel, Field


class Span(BaseModel):
    start: dt.date
    end: dt.date
    days: int


class GrowthComparison(BaseModel):
    """The two date ranges `growth_rate` compares (mean revenue per day of each)."""

    current: Span
    previous: Span


class RevenueTotal(BaseModel):
    value: int
    lower: int
    upper: int


class CountTotal(BaseModel):
    value: float
    lower: float
    upper: float


class ProjectionTotals(BaseModel):
    """Horizon totals; the bounds come from simulated paths, not from adding day bounds."""

    revenue: RevenueTotal
    signups: CountTotal
    payments: CountTotal


class MetricModels(BaseModel):
    """The method each metric's forecast used (after `auto`'s choice and any fallback)."""

    revenue: str
    signups: str
    payments: str


class BacktestScore(BaseModel):
    mae: float = Field(description="mean absolute error per forecast day")
    mase: float | None = Field(description="MAE over the in-sample same-weekday-last-week MAE, averaged over origins")
    wape: float | None = Field(description="total absolute error over total actual: 'typically off by' per day")
    coverage: float = Field(description="share of actual days inside the interval")
    points: int = Field(description="forecast days evaluated: origins × horizon")


class MetricBacktest(BaseModel):
    origins: list[dt.date] = Field(description="first forecast day of each rolling origin")
    horizon_days: int
    chosen: str
    methods: dict[str, BacktestScore]


class ProjectionBacktest(BaseModel):
    revenue: MetricBacktest
    signups: MetricBacktest
    payments: MetricBacktest
