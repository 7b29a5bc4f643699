"""The funnel event table and the daily rollups that keep its reports fast."""

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, utc_now


class EventType(StrEnum):
    USER_SIGNUP = "user_signup"
    CHECKOUT_STARTED = "checkout_started"
    PAYMENT_SUCCEEDED = "payment_succeeded"
    ESIM_ACTIVATED = "esim_activated"
    # Money facts beside the funnel: one per failed payment attempt, one per refund.
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_REFUNDED = "payment_refunded"


# The four funnel steps, in order; the money facts are not steps.
FUNNEL = (EventType.USER_SIGNUP, EventType.CHECKOUT_STARTED, EventType.PAYMENT_SUCCEEDED, EventType.ESIM_ACTIVATED)
# Event types whose amount is added to the rollups' revenue_minor_units column.
AMOUNT_EVENTS = (EventType.PAYMENT_SUCCEEDED, EventType.PAYMENT_REFUNDED)


class AnalyticsEvent(Base):
    __tablename__ = "analytics_events"
    __table_args__ = (
        Index("ix_analytics_events_type_time_user", "event_type", "occurred_at", "user_id"),
        Index("ix_analytics_events_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True, index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), nullable=True)
    amount_minor_units: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    # "metadata" is reserved on declarative classes; the column keeps the contract's name.
    event_metadata: Mapped[dict] = mapped_column("metadata", JSONType, default=dict)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utc_now)
    # The business fact this row counts ("payment_succeeded:order:42"). NOT NULL and
    # unique, so the database itself refuses a second event for the same fact.
    dedupe_key: Mapped[str] = mapped_column(String(80), unique=True)


class _DayTotals:
    """The columns of a per-day totals table: events and revenue per day, type and currency ('' when none)."""

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    event_count: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_minor_units: Mapped[int] = mapped_column(BigInteger, default=0)


class AnalyticsDailyTotal(_DayTotals, Base):
    """Events and revenue per UTC day, type and currency."""

    __tablename__ = "analytics_daily_totals"


class AnalyticsLocalDailyTotal(_DayTotals, Base):
    """The same per local day of the rollups' zone (ANALYTICS_TIMEZONE), kept only when that zone is not UTC:
    the reports in that zone read their days here instead of grouping the events."""

    __tablename__ = "analytics_local_daily_totals"


class AnalyticsMonthlyTotal(Base):
    """The same per calendar month (first day of the month): long ranges read months, then edge days."""

    __tablename__ = "analytics_monthly_totals"

    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    event_count: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_minor_units: Mapped[int] = mapped_column(BigInteger, default=0)


class AnalyticsDailyPlan(Base):
    """Payments and revenue per UTC day, plan and currency (serves top plans)."""

    __tablename__ = "analytics_daily_plans"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    plan_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    payments: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_minor_units: Mapped[int] = mapped_column(BigInteger, default=0)


class AnalyticsMonthlyPlan(Base):
    """The same per calendar month (first day of the month), for long ranges."""

    __tablename__ = "analytics_monthly_plans"

    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    plan_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    payments: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_minor_units: Mapped[int] = mapped_column(BigInteger, default=0)


class AnalyticsDailyUserBitmap(Base):
    """The exact set of one UTC day's users of one type, as a serialized Roaring bitmap.

    A cache of `analytics_events`, never written by a GET: `event_count` and
    `max_event_id` say which events it was built from. When the day's rollup count is
    higher, the events after `max_event_id` are added in memory; when the counts still
    differ (an event committed out of id order), the day is read again from the events.
    `version` is new on every write, so a process may keep decoded bitmaps by it.
    """

    __tablename__ = "analytics_daily_user_bitmaps"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_count: Mapped[int] = mapped_column(BigInteger)
    max_event_id: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[str] = mapped_column(String(32))
    bitmap: Mapped[bytes] = mapped_column(LargeBinary(length=2**24))


class AnalyticsMonthlyUserBitmap(Base):
    """The union of a closed month's daily bitmaps, so a year merges 12 bitmaps, not 365."""

    __tablename__ = "analytics_monthly_user_bitmaps"

    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_count: Mapped[int] = mapped_column(BigInteger)
    max_event_id: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[str] = mapped_column(String(32))
    bitmap: Mapped[bytes] = mapped_column(LargeBinary(length=2**24))
