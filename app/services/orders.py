"""Orders: checkout, the guarded pending → paid transition, webhooks and activation."""

import datetime as dt
import logging

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import utc_now
from app.errors import Conflict, NotFound
from app.models.analytics import EventType
from app.models.esim import EsimProfile
from app.models.order import Order, OrderStatus, PaymentWebhookEvent
from app.models.plan import Plan
from app.models.user import User
from app.services import refunds
from app.services.analytics import record_order_event
from app.services.payments import Intent, PaymentProvider

log = logging.getLogger(__name__)
PAYABLE = (OrderStatus.PENDING, OrderStatus.PAYMENT_FAILED)


def plan_snapshot(plan: Plan) -> dict:
    return {
        "plan": {
            "id": plan.id,
            "name": plan.name,
            "region": plan.region,
            "data_mb": plan.data_mb,
            "validity_days": plan.validity_days,
            "price_minor_units": plan.price_minor_units,
            "currency": plan.currency,
        }
    }


def create_order(
    session: Session, user: User, plan_id: int, *, now: dt.datetime | None = None, allow_backorders: bool = False
) -> Order:
    """A pending order at the plan's current price, with its `checkout_started` event.

    Without `allow_backorders`, a plan with no available eSIM profile is refused (409).
    Checkout reserves nothing: activation is where a profile is claimed under a lock.
    """
    now = now or utc_now()
    plan = session.get(Plan, plan_id)
    if plan is None or not plan.active:
        raise NotFound(f"Plan {plan_id} does not exist or is not on sale")
    if not allow_backorders and not _has_stock(session, plan.id):
        raise Conflict(f"Plan {plan.id} ({plan.name}) is out of stock: no eSIM profile is available, so it cannot be ordered now")
    order = Order(
        user_id=user.id,
        plan_id=plan.id,
        status=OrderStatus.PENDING,
        amount_minor_units=plan.price_minor_units,
        currency=plan.currency,
        created_at=now,
    )
    session.add(order)
    session.flush()
    record_order_event(session, EventType.CHECKOUT_STARTED, order, metadata=plan_snapshot(plan), occurred_at=now)
    return order


def _has_stock(session: Session, plan_id: int) -> bool:
    free = select(EsimProfile.id).where(EsimProfile.plan_id == plan_id, EsimProfile.order_id.is_(None)).limit(1)
    return session.scalar(free) is not None


def lock_order(session: Session, order_id: int) -> Order | None:
    # populate_existing: the row may already sit in the session with a stale status.
    return session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )


def ensure_payment_intent(session: Session, order: Order, provider: PaymentProvider, *, now: dt.datetime | None = None) -> Intent:
    """The order's one payment intent (created on first request); pays the order when the provider reports success."""
    order = lock_order(session, order.id)
    if order.status not in PAYABLE:
        raise Conflict(f"Order {order.id} is already {order.status}")
    if order.payment_intent_id:
        intent = Intent(order.payment_intent_id, order.payment_client_secret or "", provider.intent_status(order.payment_intent_id))
    else:
        intent = provider.create_intent(order)
        order.payment_intent_id = intent.id
        order.payment_client_secret = intent.client_secret
        session.flush()
    if intent.status == "succeeded":
        mark_paid(session, order, source="payment_intent", provider=provider.name, now=now)
    return intent


def sandbox_confirm(session: Session, order: Order, settings: Settings, *, now: dt.datetime | None = None) -> Intent:
    """The sandbox's "customer pays" step: the order's intent succeeds through the guarded paid transition."""
    if settings.payment_provider != "sandbox" or settings.is_production:
        # A real shop's orders are paid by the provider's webhook only.
        raise NotFound("Sandbox payments are off: they need PAYMENT_PROVIDER=sandbox and APP_ENV other than production")
    order = lock_order(session, order.id)
    if not order.payment_intent_id:
        raise Conflict(f"Order {order.id} has no payment intent yet: POST /orders/{order.id}/payment-intent first")
    intent = Intent(order.payment_intent_id, order.payment_client_secret or "", "succeeded")
    if order.status in PAYABLE:
        mark_paid(session, order, source="sandbox_confirm", provider="sandbox", now=now)
    return intent


def mark_paid(session: Session, order: Order, *, source: str, provider: str, now: dt.datetime | None = None) -> bool:
    """The one guarded pending → paid transition; records `payment_succeeded` only when it moved the order."""
    now = now or utc_now()
    moved = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status.in_(PAYABLE))
        .values(status=OrderStatus.PAID, paid_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        return False
    session.refresh(order)
    record_order_event(
        session,
        EventType.PAYMENT_SUCCEEDED,
        order,
        metadata={"payment_intent_id": order.payment_intent_id, "provider": provider, "source": source},
        occurred_at=now,
    )
    return True


def record_failed_attempt(session: Session, order: Order, attempt_id: str, *, provider: str, now: dt.datetime | None = None) -> bool:
    """One `payment_failed` event per failed attempt id; False when that attempt was already counted."""
    try:
        with session.begin_nested():
            record_order_event(
                session,
                EventType.PAYMENT_FAILED,
                order,
                metadata={"payment_intent_id": order.payment_intent_id, "attempt_id": attempt_id, "provider": provider},
                occurred_at=now or utc_now(),
                fact_id=attempt_id,
            )
            session.flush()
    except IntegrityError:
        return False
    return True


def failed_attempt_id(event: dict, intent: dict) -> str:
    """The failed attempt: the intent's charge when Stripe names it, else the event itself."""
    for candidate in (intent.get("latest_charge"), (intent.get("last_payment_error") or {}).get("charge")):
        if isinstance(candidate, dict):
            candidate = candidate.get("id")
        if isinstance(candidate, str) and candidate:
            return candidate
    return event["id"]


def mark_payment_failed(session: Session, order: Order) -> bool:
    """pending → payment_failed; a paid order never goes back."""
    return (
        session.execute(
            update(Order)
            .where(Order.id == order.id, Order.status == OrderStatus.PENDING)
            .values(status=OrderStatus.PAYMENT_FAILED)
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def handle_webhook_event(session: Session, event: dict, *, provider: str, now: dt.datetime | None = None) -> str:
    """Apply one verified provider event once; returns what happened."""
    data = event.get("data")
    # Signed but odd bodies (data as a list, a string...) are ignored, not a crash.
    intent = data.get("object") if isinstance(data, dict) else None
    is_refund = event["type"] in refunds.REFUND_EVENT_TYPES
    intent_id = None
    if isinstance(intent, dict):
        # Refund events carry a Charge or a Refund object, which names its intent.
        intent_id = refunds.refund_intent_id(intent) if is_refund else intent.get("id")
    handled = is_refund or event["type"] in ("payment_intent.succeeded", "payment_intent.payment_failed")
    order = None
    if handled and isinstance(intent_id, str):
        # Locked before the inbox row is written: that row's foreign key takes a shared lock on
        # the order, and two deliveries each holding one while waiting to update it deadlock.
        order = session.scalar(
            select(Order).where(Order.payment_intent_id == intent_id).with_for_update().execution_options(populate_existing=True)
        )
        if order is None:
            # Not stored in the inbox: the intent may belong to a checkout that has not
            # committed yet, and a redelivery must then still be able to pay it.
            return "unknown_intent"
    try:
        with session.begin_nested():
            inbox = PaymentWebhookEvent(
                provider=provider,
                provider_event_id=event["id"],
                event_type=event["type"],
                payload=event,
                outcome="received",
                order_id=order.id if order else None,
            )
            session.add(inbox)
            session.flush()
    except IntegrityError:
        return "duplicate"
    inbox.outcome = _apply_event(session, event, order, intent, provider=provider, now=now) if order else "ignored"
    return inbox.outcome


def _apply_event(session: Session, event: dict, order: Order, intent: dict, *, provider: str, now: dt.datetime | None) -> str:
    if event["type"] in refunds.REFUND_EVENT_TYPES:
        return refunds.apply_refund_event(session, event, order, provider=provider, now=now)
    if event["type"] == "payment_intent.payment_failed":
        # Counted even when the order is paid by now: Stripe may deliver an earlier attempt's failure late.
        record_failed_attempt(session, order, failed_attempt_id(event, intent), provider=provider, now=now)
        return "payment_failed" if mark_payment_failed(session, order) else "no_change"
    amount, currency = intent.get("amount"), intent.get("currency")
    if type(amount) is not int or amount != order.amount_minor_units or not isinstance(currency, str) or currency.upper() != order.currency:
        log.warning("Webhook for order %s has amount %r %r, expected %s %s", order.id, amount, currency, order.amount_minor_units, order.currency)
        return "amount_mismatch"
    return "paid" if mark_paid(session, order, source="webhook", provider=provider, now=now) else "no_change"


def activate_esim(session: Session, order: Order, *, now: dt.datetime | None = None) -> EsimProfile:
    """Assign one free profile of the order's plan; the same profile again on repeat calls."""
    now = now or utc_now()
    order = lock_order(session, order.id)
    if order.status == OrderStatus.ACTIVATED:
        return session.scalar(select(EsimProfile).where(EsimProfile.order_id == order.id))
    if order.status != OrderStatus.PAID:
        raise Conflict(f"Order {order.id} is {order.status}; it must be paid before activation")
    profile = session.scalar(
        select(EsimProfile)
        .where(EsimProfile.plan_id == order.plan_id, EsimProfile.order_id.is_(None))
        .order_by(EsimProfile.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if profile is None:
        raise Conflict(f"No eSIM profile left for plan {order.plan_id}; the order stays paid")
    profile.order_id = order.id
    profile.assigned_at = now
    order.status = OrderStatus.ACTIVATED
    order.activated_at = now
    session.flush()
    record_order_event(
        session,
        EventType.ESIM_ACTIVATED,
        order,
        metadata={"profile_id": profile.id, "iccid": profile.iccid, "provisioning_ref": f"prov-{order.id}-{profile.id}"},
        occurred_at=now,
        with_money=False,
    )
    return profile
