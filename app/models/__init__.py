"""All tables, imported here so Alembic and the app see one metadata."""

from app.models.analytics import (
    AnalyticsDailyPlan,
    AnalyticsDailyUserBitmap,
    AnalyticsDailyTotal,
    AnalyticsEvent,
    AnalyticsMonthlyPlan,
    AnalyticsMonthlyTotal,
    AnalyticsMonthlyUserBitmap,
    EventType,
)
from app.models.esim import EsimProfile
from app.models.funnel import (
    FunnelGapRollup,
    FunnelGapWindowRollup,
    FunnelPending,
    FunnelRollup,
    FunnelStep,
    FunnelWindowRollup,
    RetentionRollup,
    RollupMeta,
    UserPaidPeriod,
)
from app.models.finance import FxRate, Refund
from app.models.order import Order, OrderStatus, PaymentWebhookEvent
from app.models.plan import Plan
from app.models.user import AuthSession, LoginCode, RateLimitCounter, User

__all__ = [
    "AnalyticsDailyPlan",
    "AnalyticsDailyUserBitmap",
    "AnalyticsDailyTotal",
    "AnalyticsEvent",
    "AnalyticsMonthlyPlan",
    "AnalyticsMonthlyTotal",
    "AnalyticsMonthlyUserBitmap",
    "AuthSession",
    "EsimProfile",
    "EventType",
    "FunnelGapRollup",
    "FunnelGapWindowRollup",
    "FunnelPending",
    "FunnelRollup",
    "FunnelWindowRollup",
    "FunnelStep",
    "FxRate",
    "LoginCode",
    "Order",
    "OrderStatus",
    "PaymentWebhookEvent",
    "Plan",
    "RateLimitCounter",
    "RetentionRollup",
    "RollupMeta",
    "Refund",
    "User",
    "UserPaidPeriod",
]
