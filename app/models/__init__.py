"""All tables, imported here so Alembic and the app see one metadata."""

from app.models.analytics import (
    AnalyticsDailyPlan,
    AnalyticsDailySketch,
    AnalyticsDailyTotal,
    AnalyticsEvent,
    AnalyticsMonthlyPlan,
    AnalyticsMonthlySketch,
    EventType,
)
from app.models.esim import EsimProfile
from app.models.finance import FxRate, Refund
from app.models.order import Order, OrderStatus, PaymentWebhookEvent
from app.models.plan import Plan
from app.models.user import AuthSession, LoginCode, RateLimitCounter, User

__all__ = [
    "AnalyticsDailyPlan",
    "AnalyticsDailySketch",
    "AnalyticsDailyTotal",
    "AnalyticsEvent",
    "AnalyticsMonthlyPlan",
    "AnalyticsMonthlySketch",
    "AuthSession",
    "EsimProfile",
    "EventType",
    "FxRate",
    "LoginCode",
    "Order",
    "OrderStatus",
    "PaymentWebhookEvent",
    "Plan",
    "RateLimitCounter",
    "Refund",
    "User",
]
