"""Orders, payment intents, the payment webhook and eSIM activation."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from sqlalchemy import select

from app.api.deps import DB, AppSettings, CurrentUser
from app.api.responses import error_responses
from app.errors import AppError, Forbidden, NotFound
from app.models.esim import EsimProfile
from app.models.order import Order
from app.models.user import User
from app.schemas.shop import ActivationOut, EsimOut, OrderIn, OrderOut, PaymentIntentOut, WebhookOut
from app.services import orders as order_service
from app.services.payments import get_provider, verify_webhook

router = APIRouter(tags=["orders"])


def _order_for(session, order_id: int, user: User, *, owner_only: bool = False) -> Order:
    # Ids are 32-bit INTEGER columns; PostgreSQL refuses to compare with anything larger.
    order = session.get(Order, order_id) if 0 < order_id < 2**31 else None
    if order is not None and order.user_id == user.id:
        return order
    if order is not None and user.is_admin:
        if owner_only:
            raise Forbidden("Only the customer who placed the order can do this")
        return order
    # 404 rather than 403 for a customer: other customers' order ids are nobody's business.
    raise NotFound(f"Order {order_id} not found")


def _order_out(session, order: Order) -> OrderOut:
    profile = session.scalar(select(EsimProfile).where(EsimProfile.order_id == order.id))
    return OrderOut(
        id=order.id,
        status=order.status,
        plan_id=order.plan_id,
        amount_minor_units=order.amount_minor_units,
        currency=order.currency,
        created_at=order.created_at,
        esim=EsimOut(iccid=profile.iccid, activation_code=profile.activation_code) if profile else None,
    )


@router.post("/orders", status_code=status.HTTP_201_CREATED, response_model=OrderOut, responses=error_responses(400, 401, 404, 409, 413, 422))
def create_order(body: OrderIn, session: DB, user: CurrentUser, settings: AppSettings) -> OrderOut:
    """Start a checkout for a plan (records `checkout_started`)."""
    order = order_service.create_order(session, user, body.plan_id, allow_backorders=settings.allow_backorders)
    return _order_out(session, order)


@router.get("/orders/{order_id}", response_model=OrderOut, responses=error_responses(401, 404, 422))
def get_order(order_id: int, session: DB, user: CurrentUser) -> OrderOut:
    """One order, with its eSIM once activated."""
    return _order_out(session, _order_for(session, order_id, user))


@router.post("/orders/{order_id}/payment-intent", response_model=PaymentIntentOut, responses=error_responses(401, 403, 404, 409, 422))
def create_payment_intent(order_id: int, session: DB, user: CurrentUser, settings: AppSettings) -> PaymentIntentOut:
    """The order's payment intent (the same one when asked again)."""
    order = _order_for(session, order_id, user, owner_only=True)
    intent = order_service.ensure_payment_intent(session, order, get_provider(settings))
    return PaymentIntentOut(payment_intent_id=intent.id, client_secret=intent.client_secret, status=intent.status)


@router.post(
    "/orders/{order_id}/payment-intent/confirm",
    response_model=PaymentIntentOut,
    responses=error_responses(401, 403, 404, 409, 422),
)
def confirm_sandbox_payment(order_id: int, session: DB, user: CurrentUser, settings: AppSettings) -> PaymentIntentOut:
    """Sandbox only (404 with Stripe or in production): pay the order's intent, as a customer would at the provider."""
    order = _order_for(session, order_id, user, owner_only=True)
    intent = order_service.sandbox_confirm(session, order, settings)
    return PaymentIntentOut(payment_intent_id=intent.id, client_secret=intent.client_secret, status=intent.status)


async def raw_body(request: Request) -> bytes:
    return await request.body()


STRIPE_SIGNATURE_HEADER = {
    "name": "Stripe-Signature",
    "in": "header",
    "required": True,
    "description": "t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<raw body>' with the webhook secret>",
    "schema": {"type": "string"},
}
# The body is read raw (the signature covers its exact bytes); declared here for OpenAPI.
STRIPE_EVENT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["id", "type", "data"],
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string"},
                    "data": {
                        "type": "object",
                        "properties": {
                            "object": {
                                "type": "object",
                                "properties": {
                                    "id": {"type": "string"},
                                    "amount": {"type": "integer"},
                                    "currency": {"type": "string"},
                                },
                            }
                        },
                    },
                },
            }
        }
    },
}


@router.post(
    "/payments/webhook",
    response_model=WebhookOut,
    responses=error_responses(400, 413),
    openapi_extra={"requestBody": STRIPE_EVENT_BODY, "parameters": [STRIPE_SIGNATURE_HEADER]},
)
def payment_webhook(
    request: Request, payload: Annotated[bytes, Depends(raw_body)], session: DB, settings: AppSettings
) -> WebhookOut:
    """Stripe-format payment events, verified with `Stripe-Signature` on the raw body."""
    try:
        event = verify_webhook(payload, request.headers.get("stripe-signature"), settings.stripe_webhook_secret)
    except ValueError as exc:
        raise AppError(str(exc), status_code=400) from exc
    outcome = order_service.handle_webhook_event(session, event, provider=settings.payment_provider)
    return WebhookOut(outcome=outcome)


@router.post("/orders/{order_id}/activate", response_model=ActivationOut, responses=error_responses(401, 404, 409, 422))
def activate_esim(order_id: int, session: DB, user: CurrentUser) -> ActivationOut:
    """Assign an eSIM profile to a paid order (records `esim_activated`)."""
    order = _order_for(session, order_id, user)
    profile = order_service.activate_esim(session, order)
    return ActivationOut(order_id=order.id, status="activated", iccid=profile.iccid, activation_code=profile.activation_code)
