"""Support: find orders (search and problem filters), an order's timeline, and eSIM stock per plan."""

import datetime as dt
from enum import StrEnum

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.db import utc_now
from app.models.analytics import AnalyticsEvent
from app.models.esim import EsimProfile
from app.models.finance import Refund
from app.models.order import Order, OrderStatus, PaymentWebhookEvent
from app.models.plan import Plan
from app.models.user import User

STUCK_AFTER = dt.timedelta(hours=1)
STOCK_WINDOW_DAYS = 14
LOW_STOCK_DAYS = 7


class Problem(StrEnum):
    PAID_NOT_ACTIVATED = "paid_not_activated"  # paid more than an hour ago, no eSIM yet
    PAYMENT_FAILED = "payment_failed"  # the last attempt failed and none succeeded since
    REFUNDED = "refunded"  # some or all of the payment was refunded


def problem_condition(problem: Problem, now: dt.datetime):
    """The WHERE clause of one problem filter."""
    if problem is Problem.PAID_NOT_ACTIVATED:
        return and_(Order.status == OrderStatus.PAID, Order.paid_at < now - STUCK_AFTER)
    if problem is Problem.PAYMENT_FAILED:
        return Order.status == OrderStatus.PAYMENT_FAILED
    return Order.refunded_minor_units > 0


def search_condition(q: str):
    """All digits: the order id or the ICCID; otherwise the payment intent id or part of the customer's email."""
    text = q.strip()
    if text.isdigit():
        options = [EsimProfile.iccid == text]
        if 0 < int(text) < 2**31:
            options.append(Order.id == int(text))
        return or_(*options)
    return or_(User.email.contains(text.lower(), autoescape=True), Order.payment_intent_id == text)


def find_orders(
    session: Session,
    *,
    q: str | None = None,
    status: OrderStatus | None = None,
    problem: Problem | None = None,
    limit: int = 50,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> dict:
    """A page of orders, newest first (by id, so pages are stable), with the total and the problem counts."""
    now = now or utc_now()
    base = (
        select(Order, User.email, Plan.name, EsimProfile.iccid)
        .join(User, User.id == Order.user_id)
        .join(Plan, Plan.id == Order.plan_id)
        .outerjoin(EsimProfile, EsimProfile.order_id == Order.id)
    )
    conditions = []
    if q and q.strip():
        conditions.append(search_condition(q))
    if status is not None:
        conditions.append(Order.status == status)
    if problem is not None:
        conditions.append(problem_condition(problem, now))
    filtered = base.where(*conditions)
    total = session.scalar(select(func.count()).select_from(filtered.with_only_columns(Order.id).subquery()))
    rows = session.execute(filtered.order_by(Order.id.desc()).limit(limit).offset(offset)).all()
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "orders": [order_row(order, email, plan_name, iccid) for order, email, plan_name, iccid in rows],
        "problems": problem_counts(session, now),
    }


def problem_counts(session: Session, now: dt.datetime) -> dict[str, int]:
    """How many orders each problem filter finds right now."""
    return {
        problem.value: session.scalar(select(func.count()).select_from(Order).where(problem_condition(problem, now)))
        for problem in Problem
    }


def order_row(order: Order, email: str, plan_name: str, iccid: str | None) -> dict:
    return {
        "id": order.id,
        "status": order.status,
        "user_id": order.user_id,
        "email": email,
        "plan_id": order.plan_id,
        "plan_name": plan_name,
        "amount_minor_units": order.amount_minor_units,
        "currency": order.currency,
        "refunded_minor_units": order.refunded_minor_units,
        "payment_intent_id": order.payment_intent_id,
        "iccid": iccid,
        "created_at": order.created_at,
        "paid_at": order.paid_at,
        "activated_at": order.activated_at,
    }


def order_timeline(session: Session, order: Order) -> dict:
    """The order with its analytics events, webhook deliveries and refunds, oldest first."""
    user = session.get(User, order.user_id)
    plan = session.get(Plan, order.plan_id)
    iccid = session.scalar(select(EsimProfile.iccid).where(EsimProfile.order_id == order.id))
    entries = []
    for event in session.scalars(select(AnalyticsEvent).where(AnalyticsEvent.order_id == order.id)):
        entries.append({
            "at": event.occurred_at, "kind": "event", "type": event.event_type,
            "amount_minor_units": event.amount_minor_units, "currency": event.currency, "detail": event.event_metadata,
        })
    for delivery in session.scalars(select(PaymentWebhookEvent).where(PaymentWebhookEvent.order_id == order.id)):
        entries.append({
            "at": delivery.received_at, "kind": "webhook", "type": delivery.event_type,
            "amount_minor_units": None, "currency": None,
            "detail": {"provider_event_id": delivery.provider_event_id, "outcome": delivery.outcome, "provider": delivery.provider},
        })
    for refund in session.scalars(select(Refund).where(Refund.order_id == order.id)):
        entries.append({
            "at": refund.refunded_at, "kind": "refund", "type": "refund",
            "amount_minor_units": refund.amount_minor_units, "currency": refund.currency,
            "detail": {"provider_refund_id": refund.provider_refund_id, "source": refund.source, "provider": refund.provider},
        })
    kind_order = {"webhook": 0, "event": 1, "refund": 2}  # at the same instant: the delivery caused the event
    entries.sort(key=lambda e: (e["at"], kind_order[e["kind"]]))
    return {"order": order_row(order, user.email, plan.name, iccid), "timeline": entries}


def inventory(session: Session, *, now: dt.datetime | None = None) -> dict:
    """Per plan: free profiles, activations in the last 14 days, and days of stock left at that rate."""
    now = now or utc_now()
    since = now - dt.timedelta(days=STOCK_WINDOW_DAYS)
    free = (
        select(EsimProfile.plan_id, func.count().label("n"))
        .where(EsimProfile.order_id.is_(None))
        .group_by(EsimProfile.plan_id)
        .subquery()
    )
    recent = (
        select(EsimProfile.plan_id, func.count().label("n"))
        .where(EsimProfile.assigned_at >= since, EsimProfile.assigned_at < now)
        .group_by(EsimProfile.plan_id)
        .subquery()
    )
    rows = session.execute(
        select(Plan.id, Plan.name, Plan.region, Plan.active, func.coalesce(free.c.n, 0), func.coalesce(recent.c.n, 0))
        .outerjoin(free, free.c.plan_id == Plan.id)
        .outerjoin(recent, recent.c.plan_id == Plan.id)
    ).all()
    plans = []
    for plan_id, name, region, active, available, activations in rows:
        available, activations = int(available), int(activations)
        # days = available / (activations / 14 days); null when nothing was activated (no rate to run down at).
        days_left = available * STOCK_WINDOW_DAYS / activations if activations else None
        plans.append({
            "plan_id": plan_id,
            "plan_name": name,
            "region": region,
            "active": active,
            "available_profiles": available,
            "activations_last_14_days": activations,
            "activations_per_day": round(activations / STOCK_WINDOW_DAYS, 2),
            "days_of_stock_left": round(days_left, 1) if days_left is not None else None,
            "low_stock": available == 0 or (days_left is not None and days_left < LOW_STOCK_DAYS),
        })
    # Sold out first, then the fewest days left; plans without a rate last.
    plans.sort(key=lambda p: (not p["low_stock"], p["available_profiles"] > 0, p["days_of_stock_left"] is None,
                              p["days_of_stock_left"] or 0, p["plan_id"]))
    return {
        "as_of": now,
        "window_days": STOCK_WINDOW_DAYS,
        "low_stock_days": LOW_STOCK_DAYS,
        "plans": plans,
    }
