"""Payment providers: a local sandbox and Stripe, behind one small interface."""

import secrets
from dataclasses import dataclass
from typing import Protocol

import stripe

from app.config import Settings
from app.models.order import Order
from app.services.refunds import ProviderRefund
from app.services.webhook_body import decode_text, parse_event


@dataclass(frozen=True)
class Intent:
    id: str
    client_secret: str
    status: str


class PaymentProvider(Protocol):
    name: str

    def create_intent(self, order: Order) -> Intent: ...

    def intent_status(self, intent_id: str) -> str: ...

    def create_refund(self, order: Order, amount_minor_units: int) -> ProviderRefund: ...


class SandboxProvider:
    """Local intents; with auto-confirm they succeed at creation."""

    name = "sandbox"

    def __init__(self, auto_confirm: bool):
        self.auto_confirm = auto_confirm

    def create_intent(self, order: Order) -> Intent:
        intent_id = f"pi_{secrets.token_hex(12)}"
        return Intent(intent_id, f"{intent_id}_secret_{secrets.token_hex(12)}", self.intent_status(intent_id))

    def intent_status(self, intent_id: str) -> str:
        return "succeeded" if self.auto_confirm else "requires_payment_method"

    def create_refund(self, order: Order, amount_minor_units: int) -> ProviderRefund:
        """Sandbox refunds succeed at once, like a card refund Stripe confirms synchronously."""
        return ProviderRefund(f"re_{secrets.token_hex(12)}", amount_minor_units, order.currency, "succeeded")


class StripeProvider:
    name = "stripe"

    def __init__(self, secret_key: str, api_base: str = ""):
        if not secret_key:
            raise ValueError("PAYMENT_PROVIDER=stripe needs STRIPE_SECRET_KEY")
        # api_base points the SDK at stripe-mock or a test server; empty means Stripe itself.
        addresses = {"api": api_base} if api_base else None
        self.client = stripe.StripeClient(secret_key, base_addresses=addresses, max_network_retries=2)

    def create_intent(self, order: Order) -> Intent:
        intent = self.client.v1.payment_intents.create(
            params={
                "amount": order.amount_minor_units,
                "currency": order.currency.lower(),
                "metadata": {"order_id": str(order.id)},
                "automatic_payment_methods": {"enabled": True},
            },
            # A fixed key per order: a retried request cannot create a second intent.
            options={"idempotency_key": f"order-{order.id}-payment-intent"},
        )
        return Intent(intent.id, intent.client_secret, intent.status)

    def intent_status(self, intent_id: str) -> str:
        return self.client.v1.payment_intents.retrieve(intent_id).status

    def create_refund(self, order: Order, amount_minor_units: int) -> ProviderRefund:
        refund = self.client.v1.refunds.create(
            params={"payment_intent": order.payment_intent_id, "amount": amount_minor_units, "metadata": {"order_id": str(order.id)}},
            # The same request (same order, same refunded total, same amount) is one refund, even when retried.
            options={"idempotency_key": f"order-{order.id}-refund-{order.refunded_minor_units}-{amount_minor_units}"},
        )
        return ProviderRefund(refund.id, refund.amount, refund.currency, refund.status or "pending")


def get_provider(settings: Settings) -> PaymentProvider:
    if settings.payment_provider == "stripe":
        return StripeProvider(settings.stripe_secret_key, settings.stripe_api_base)
    return SandboxProvider(settings.payment_sandbox_auto_confirm)


def verify_webhook(payload: bytes, signature: str | None, secret: str) -> dict:
    """Check `Stripe-Signature` (5 minutes tolerance) and return the event; ValueError when invalid."""
    if not secret:
        # An empty secret verifies against an empty key, which anyone can forge.
        raise ValueError("Webhook signing secret is not configured")
    text = decode_text(payload)
    if not signature:
        raise ValueError("Missing Stripe-Signature header")
    try:
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance=300)
    except stripe.SignatureVerificationError as exc:
        raise ValueError("Invalid webhook signature") from exc
    return parse_event(text)
