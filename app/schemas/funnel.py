"""Typed responses of the ordered funnel and retention reports."""

from pydantic import BaseModel, Field

from app.schemas.analytics import EngineInfo


class FunnelStepResult(BaseModel):
    name: str
    count: int
    conversion_from_previous: float | None = Field(description="count / previous step's count; null when that is 0")
    conversion_from_start: float | None = Field(description="count / entrants; null when there are none")
    dropped: int = Field(description="reached the previous step, not this one, and the window has closed")
    in_progress: int = Field(description="reached the previous step, not this one yet, window still open at now")
    median_seconds: float | None = Field(description="nearest-rank p50 of the time from the previous step")
    p90_seconds: float | None = Field(description="nearest-rank p90 of the time from the previous step")


class FunnelSeries(BaseModel):
    value: str
    entrants: int
    steps: list[FunnelStepResult]


class FunnelResponse(EngineInfo):
    start_date: str
    end_date: str
    clamped: bool
    by: str
    window_days: int
    tz: str
    breakdown: str | None
    exclude_internal: bool
    steps: list[str]
    funnel: list[FunnelStepResult]
    breakdowns: list[FunnelSeries] | None = None
    source: str = Field(
        description="'rollup' (derived counts) or 'entrants' (per-entrant rows) on the SQL engine, 'clickhouse' "
        "(per-entrant chains over the warehouse's events); equal results"
    )
    now: str


class RetentionCohort(BaseModel):
    cohort_start: str
    size: int
    retained: list[int] = Field(description="users of the cohort who paid in period 1, 2, ... N after it")
    rates: list[float | None]


class RetentionResponse(EngineInfo):
    interval: str
    start_date: str
    end_date: str
    clamped: bool
    tz: str
    exclude_internal: bool
    cohorts: list[RetentionCohort]
    source: str = Field(description="'rollup' or 'events' on the SQL engine, 'clickhouse' from the warehouse's events; equal results")
