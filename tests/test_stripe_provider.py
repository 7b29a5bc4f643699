"""The Stripe provider through the official SDK, against a local HTTP server that plays Stripe."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pytest

from app.models.order import Order
from app.services.payments import StripeProvider


class FakeStripe(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        FakeStripe.requests.append((self.path, dict(self.headers), parse_qs(body)))
        self._reply({"id": "pi_fake_1", "object": "payment_intent", "client_secret": "pi_fake_1_secret_x", "status": "requires_payment_method", "amount": 1999, "currency": "eur"})

    def do_GET(self):
        FakeStripe.requests.append((self.path, dict(self.headers), {}))
        self._reply({"id": "pi_fake_1", "object": "payment_intent", "client_secret": "pi_fake_1_secret_x", "status": "succeeded"})

    def _reply(self, payload):
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_stripe():
    FakeStripe.requests = []
    server = HTTPServer(("127.0.0.1", 0), FakeStripe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_create_intent_sends_amount_currency_and_a_fixed_idempotency_key(fake_stripe):
    provider = StripeProvider("sk_test_123", fake_stripe)
    order = Order(id=42, amount_minor_units=1999, currency="EUR")
    first = provider.create_intent(order)
    provider.create_intent(order)
    assert (first.id, first.client_secret, first.status) == ("pi_fake_1", "pi_fake_1_secret_x", "requires_payment_method")
    (path, headers, form), (_, headers_again, _) = FakeStripe.requests
    assert path == "/v1/payment_intents"
    assert form["amount"] == ["1999"] and form["currency"] == ["eur"] and form["metadata[order_id]"] == ["42"]
    assert headers["Authorization"] == "Bearer sk_test_123"
    assert headers["Idempotency-Key"] == headers_again["Idempotency-Key"] == "order-42-payment-intent"


def test_intent_status_is_read_from_stripe(fake_stripe):
    assert StripeProvider("sk_test_123", fake_stripe).intent_status("pi_fake_1") == "succeeded"
    assert FakeStripe.requests[-1][0] == "/v1/payment_intents/pi_fake_1"


def test_stripe_provider_needs_a_key():
    with pytest.raises(ValueError, match="STRIPE_SECRET_KEY"):
        StripeProvider("")
