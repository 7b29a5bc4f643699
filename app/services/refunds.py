"""Refunds: each provider refund counted once, never more than was paid, with its `payment_refunded` event.

The webhook (`charge.refunded`, `refund.created`, `refund.updated`) and the admin's
refund (`POST /admin/orders/{id}/refund`) both end in `apply_refund`. It locks the
order row first, so two refunds of one order run one after the other and the second
sees what the first added; the unique `refunds.provider_refund_id` counts a refund id
once whatever the redeliveries, and `payment_refunded`'s dedupe key does the same for
the event.
"""

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import utc_now
from app.errors import Conflict, InvalidInput
from app.models.analytics import EventType
from app.models.finance import Refund
from app.models.order import Order, OrderStatus
from app.services.analytics import record_order_event

log = logging.getLogger(__name__)
REFUNDABLE = (OrderStatus.PAID, OrderStatus.ACTIVATED, OrderStatus.REFUNDED)
REFUND_EVENT_TYPES = ("charge.refunded", "refund.created", "refund.updated", "charge.refund.updated")


@dataclass(frozen=True)
class ProviderRefund:
    """A refund as the provider reports it (Stripe's Refund object, or the sandbox's)."""

    id: str
    amount_minor_units: int
    currency: str
    status: str


def lock_order(session: Session, order_id: int) -> Order:
    """The order row, locked until the transaction ends, read fresh."""
    return session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )


def refundable_minor_units(order: Order) -> int:
    """What can still be refunded: the paid amount less the refunds counted so far."""
    if order.status not in REFUNDABLE:
        return 0
    return order.amount_minor_units - order.refunded_minor_units


def apply_refund(
    session: Session, order: Order, refund: ProviderRefund, *, provider: str, source: str, now: dt.datetime | None = None
) -> str:
    """Count one succeeded refund of `order` once; returns `refunded`, `partially_refunded` or `duplicate`.

    Refuses (Conflict / InvalidInput, nothing written) a refund of an unpaid order, in
    another currency, of a non-positive amount, or above what is left to refund.
    """
    now = now or utc_now()
    order = lock_order(session, order.id)
    if session.scalar(select(Refund.id).where(Refund.provider_refund_id == refund.id)) is not None:
        return "duplicate"
    if order.status not in REFUNDABLE:
        raise Conflict(f"Order {order.id} is {order.status}; only a paid order can be refunded")
    if refund.currency.upper() != order.currency:
        raise InvalidInput(f"currency: the refund is in {refund.currency.upper()}, the order was paid in {order.currency}")
    left = refundable_minor_units(order)
    if refund.amount_minor_units <= 0:
        raise InvalidInput("amount_minor_units: a refund must be more than 0")
    if refund.amount_minor_units > left:
        raise InvalidInput(
            f"amount_minor_units: {refund.amount_minor_units} is more than the {left} {order.currency} "
            f"left to refund on order {order.id} (paid {order.amount_minor_units}, refunded {order.refunded_minor_units})"
        )
    try:
        with session.begin_nested():
            session.add(
                Refund(
                    order_id=order.id,
                    provider=provider,
                    provider_refund_id=refund.id,
                    amount_minor_units=refund.amount_minor_units,
                    currency=order.currency,
                    source=source,
                    refunded_at=now,
                )
            )
            session.flush()
    except IntegrityError:
        # Another transaction counted this refund id between our check and our insert.
        return "duplicate"
    full = refund.amount_minor_units == left
    moved = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.refunded_minor_units + refund.amount_minor_units <= Order.amount_minor_units)
        .values(
            refunded_minor_units=Order.refunded_minor_units + refund.amount_minor_units,
            status=OrderStatus.REFUNDED if full else order.status,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:  # the row lock makes this unreachable; never count past the paid amount regardless
        raise Conflict(f"Order {order.id} changed while refunding; try again")
    session.refresh(order)
    record_order_event(
        session,
        EventType.PAYMENT_REFUNDED,
        order,
        amount_minor_units=refund.amount_minor_units,
        metadata={"refund_id": refund.id, "provider": provider, "source": source, "full": full,
                  "refunded_minor_units": order.refunded_minor_units},
        occurred_at=now,
        fact_id=refund.id,
    )
    return "refunded" if full else "partially_refunded"


def refunds_in_event(event: dict) -> list[ProviderRefund]:
    """The refunds a Stripe event reports (a Charge's `refunds.data`, or one Refund object)."""
    obj = event["data"]["object"]
    if event["type"] == "charge.refunded":
        listed = obj.get("refunds")
        candidates = listed.get("data") if isinstance(listed, dict) else None
        # API versions since 2022-11-15 leave `refunds` out of a Charge; the refund.* events then carry each refund.
        candidates = candidates if isinstance(candidates, list) else []
    else:
        candidates = [obj]
    found = []
    for item in candidates:
        if not isinstance(item, dict):
            continue
        refund_id, amount, currency, status = item.get("id"), item.get("amount"), item.get("currency"), item.get("status")
        if isinstance(refund_id, str) and refund_id and type(amount) is int and isinstance(currency, str) and isinstance(status, str):
            found.append(ProviderRefund(refund_id, amount, currency, status))
    return found


def refund_intent_id(obj: dict) -> str | None:
    """The payment intent a Charge or Refund object belongs to (an id, or an expanded object)."""
    intent = obj.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    return intent if isinstance(intent, str) else None


def apply_refund_event(session: Session, event: dict, order: Order, *, provider: str, now: dt.datetime | None) -> str:
    """Count the succeeded refunds of a verified refund event; others (pending, failed) change nothing."""
    outcomes = []
    for refund in refunds_in_event(event):
        if refund.status != "succeeded":
            outcomes.append(f"refund_{refund.status}"[:40])
            continue
        try:
            outcomes.append(apply_refund(session, order, refund, provider=provider, source="webhook", now=now))
        except (Conflict, InvalidInput) as exc:
            log.warning("Refund %s of order %s not counted: %s", refund.id, order.id, exc.detail)
            outcomes.append("refund_refused")
    for preferred in ("refunded", "partially_refunded", "refund_refused", "duplicate"):
        if preferred in outcomes:
            return preferred
    return outcomes[0] if outcomes else "no_change"
