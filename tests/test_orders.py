"""Orders, payment intents, the webhook and activation, through HTTP."""

import json
import time

import pytest
from sqlalchemy import func, select

from app.models.analytics import AnalyticsEvent
from app.models.order import Order, PaymentWebhookEvent
from tests import factories
from tests.helpers import auth, login, post_webhook, sign, stripe_event


@pytest.fixture
def shop(client, db, mailbox):
    """A plan with two profiles, a customer with a bearer token, and an admin."""
    plan = factories.create_plan(db, name="Europe 5 GB", price_minor_units=1999, currency="EUR")
    factories.create_profiles(db, plan=plan, count=2)
    customer = login(client, mailbox, "buyer@shop.test")
    admin = login(client, mailbox, "admin@shop.test")
    return {"plan": plan, "headers": auth(customer["access_token"]), "admin": auth(admin["access_token"])}


def events(db, event_type, order_id=None):
    query = select(func.count()).select_from(AnalyticsEvent).where(AnalyticsEvent.event_type == event_type)
    if order_id is not None:
        query = query.where(AnalyticsEvent.order_id == order_id)
    return db.scalar(query)


def new_order(client, shop):
    response = client.post("/orders", json={"plan_id": shop["plan"].id}, headers=shop["headers"])
    assert response.status_code == 201, response.text
    return response.json()


def intent_for(client, shop, order):
    response = client.post(f"/orders/{order['id']}/payment-intent", headers=shop["headers"])
    assert response.status_code == 200, response.text
    return response.json()


def status_of(client, shop, order):
    return client.get(f"/orders/{order['id']}", headers=shop["headers"]).json()["status"]


def test_create_order_records_checkout_with_plan_snapshot(client, db, shop):
    order = new_order(client, shop)
    assert order["status"] == "pending" and order["plan_id"] == shop["plan"].id
    assert order["amount_minor_units"] == 1999 and order["currency"] == "EUR"
    event = db.scalar(select(AnalyticsEvent).where(AnalyticsEvent.order_id == order["id"]))
    assert event.event_type == "checkout_started"
    assert event.amount_minor_units == 1999 and event.currency == "EUR"
    assert event.event_metadata["plan"]["name"] == "Europe 5 GB"
    assert event.event_metadata["plan"]["price_minor_units"] == 1999


@pytest.mark.parametrize("body", [{}, {"plan_id": "x"}, {"plan_id": -1}, {"plan_id": 0}])
def test_bad_order_body_is_422(client, shop, body):
    assert client.post("/orders", json=body, headers=shop["headers"]).status_code == 422


def test_unknown_or_inactive_plan_is_404(client, db, shop):
    inactive = factories.create_plan(db, active=False)
    assert client.post("/orders", json={"plan_id": 987654}, headers=shop["headers"]).status_code == 404
    assert client.post("/orders", json={"plan_id": inactive.id}, headers=shop["headers"]).status_code == 404
    assert events(db, "checkout_started") == 0


def test_orders_need_login_and_belong_to_their_owner(client, shop, mailbox):
    assert client.post("/orders", json={"plan_id": shop["plan"].id}).status_code == 401
    order = new_order(client, shop)
    other = auth(login(client, mailbox, "other@shop.test")["access_token"])
    assert client.get(f"/orders/{order['id']}", headers=other).status_code == 404
    assert client.post(f"/orders/{order['id']}/payment-intent", headers=other).status_code == 404
    assert client.post(f"/orders/{order['id']}/activate", headers=other).status_code == 404
    assert client.get(f"/orders/{order['id']}", headers=shop["admin"]).status_code == 200
    assert client.get("/orders/424242", headers=shop["headers"]).status_code == 404


def test_same_unpaid_order_gets_the_same_intent(client, shop):
    order = new_order(client, shop)
    first, second = intent_for(client, shop, order), intent_for(client, shop, order)
    assert first["payment_intent_id"] == second["payment_intent_id"]
    assert first["payment_intent_id"].startswith("pi_")
    assert first["client_secret"] == second["client_secret"]
    assert first["status"] == "requires_payment_method"


def test_auto_confirmed_intent_pays_once(client, db, shop, settings, monkeypatch):
    monkeypatch.setattr(settings, "payment_sandbox_auto_confirm", True)
    order = new_order(client, shop)
    intent = intent_for(client, shop, order)
    assert intent["status"] == "succeeded"
    assert status_of(client, shop, order) == "paid"
    assert client.post(f"/orders/{order['id']}/payment-intent", headers=shop["headers"]).status_code == 409
    payload = stripe_event("evt_auto", "payment_intent.succeeded", intent["payment_intent_id"], 1999, "eur")
    assert post_webhook(client, payload).json()["outcome"] == "no_change"
    assert events(db, "payment_succeeded", order["id"]) == 1
    event = db.scalar(select(AnalyticsEvent).where(AnalyticsEvent.order_id == order["id"], AnalyticsEvent.event_type == "payment_succeeded"))
    assert event.amount_minor_units == 1999 and event.currency == "EUR" and event.plan_id == shop["plan"].id


def test_webhook_success_pays_once_whatever_the_redeliveries(client, db, shop):
    order = new_order(client, shop)
    intent = intent_for(client, shop, order)
    payload = stripe_event("evt_ok", "payment_intent.succeeded", intent["payment_intent_id"], 1999, "eur")
    outcomes = [post_webhook(client, payload).json()["outcome"] for _ in range(3)]
    assert outcomes == ["paid", "duplicate", "duplicate"]
    other_id = stripe_event("evt_ok_2", "payment_intent.succeeded", intent["payment_intent_id"], 1999, "eur")
    assert post_webhook(client, other_id).json()["outcome"] == "no_change"
    assert status_of(client, shop, order) == "paid"
    assert events(db, "payment_succeeded", order["id"]) == 1
    assert db.scalar(select(func.count()).select_from(PaymentWebhookEvent)) == 2


def test_failed_then_succeeded_pays_and_paid_never_goes_back(client, db, shop):
    order = new_order(client, shop)
    intent_id = intent_for(client, shop, order)["payment_intent_id"]
    failed = post_webhook(client, stripe_event("evt_f1", "payment_intent.payment_failed", intent_id, 1999, "eur"))
    assert failed.json()["outcome"] == "payment_failed"
    assert status_of(client, shop, order) == "payment_failed"
    # The customer retries: the same intent comes back.
    assert intent_for(client, shop, order)["payment_intent_id"] == intent_id
    assert post_webhook(client, stripe_event("evt_s1", "payment_intent.succeeded", intent_id, 1999, "eur")).json()["outcome"] == "paid"
    late_failure = post_webhook(client, stripe_event("evt_f2", "payment_intent.payment_failed", intent_id, 1999, "eur"))
    assert late_failure.status_code == 200 and late_failure.json()["outcome"] == "no_change"
    assert status_of(client, shop, order) == "paid"
    assert events(db, "payment_succeeded", order["id"]) == 1


@pytest.mark.parametrize("amount,currency", [(1998, "eur"), (1999, "usd"), (19990, "eur"), ("1999", "eur"), (1999, None)])
def test_mismatched_amount_or_currency_never_pays(client, db, shop, amount, currency):
    order = new_order(client, shop)
    intent_id = intent_for(client, shop, order)["payment_intent_id"]
    response = post_webhook(client, stripe_event("evt_mm", "payment_intent.succeeded", intent_id, amount, currency))
    assert response.status_code == 200 and response.json()["outcome"] == "amount_mismatch"
    assert status_of(client, shop, order) == "pending"
    assert events(db, "payment_succeeded") == 0


def test_unknown_intent_and_other_event_types_change_nothing(client, db, shop):
    order = new_order(client, shop)
    intent_for(client, shop, order)
    assert post_webhook(client, stripe_event("evt_u", "payment_intent.succeeded", "pi_unknown", 1999, "eur")).json()["outcome"] == "unknown_intent"
    assert post_webhook(client, stripe_event("evt_c", "charge.refunded", "pi_x", 1, "eur")).json()["outcome"] == "ignored"
    assert status_of(client, shop, order) == "pending"


@pytest.mark.parametrize(
    "signature",
    [
        None,  # header missing
        "t=1,v1=forged",
        "garbage",
        "stale",
        "wrong-secret",
    ],
)
def test_bad_signatures_are_400_and_change_nothing(client, db, shop, signature):
    order = new_order(client, shop)
    intent_id = intent_for(client, shop, order)["payment_intent_id"]
    payload = stripe_event("evt_sig", "payment_intent.succeeded", intent_id, 1999, "eur")
    headers = {"Content-Type": "application/json"}
    if signature == "stale":
        headers["Stripe-Signature"] = sign(payload, timestamp=int(time.time()) - 301)
    elif signature == "wrong-secret":
        headers["Stripe-Signature"] = sign(payload, secret="whsec_other")
    elif signature is not None:
        headers["Stripe-Signature"] = signature
    response = client.post("/payments/webhook", content=payload, headers=headers)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert status_of(client, shop, order) == "pending"
    assert db.scalar(select(func.count()).select_from(PaymentWebhookEvent)) == 0


def test_tampered_body_fails_verification(client, shop):
    order = new_order(client, shop)
    intent_id = intent_for(client, shop, order)["payment_intent_id"]
    payload = stripe_event("evt_t", "payment_intent.succeeded", intent_id, 1999, "eur")
    tampered = payload.replace(b'"amount": 1999', b'"amount": 1')
    assert post_webhook(client, tampered, signature=sign(payload)).status_code == 400


def test_empty_webhook_secret_refuses_everything(client, shop, settings, monkeypatch):
    monkeypatch.setattr(settings, "stripe_webhook_secret", "")
    payload = stripe_event("evt_e", "payment_intent.succeeded", "pi_x", 1, "eur")
    assert post_webhook(client, payload, signature=sign(payload, secret="")).status_code == 400


def test_signed_but_malformed_body_is_400(client):
    for payload in (b"not json", json.dumps({"no": "id"}).encode(), b"[]"):
        assert post_webhook(client, payload).status_code == 400


def test_activation_assigns_one_profile_and_is_idempotent(client, db, shop):
    order = new_order(client, shop)
    intent_id = intent_for(client, shop, order)["payment_intent_id"]
    post_webhook(client, stripe_event("evt_p", "payment_intent.succeeded", intent_id, 1999, "eur"))
    first = client.post(f"/orders/{order['id']}/activate", headers=shop["headers"])
    assert first.status_code == 200
    body = first.json()
    assert body["order_id"] == order["id"] and body["status"] == "activated"
    assert body["iccid"].startswith("89") and body["activation_code"]
    assert client.post(f"/orders/{order['id']}/activate", headers=shop["headers"]).json() == body
    assert events(db, "esim_activated", order["id"]) == 1
    event = db.scalar(select(AnalyticsEvent).where(AnalyticsEvent.order_id == order["id"], AnalyticsEvent.event_type == "esim_activated"))
    assert event.event_metadata["iccid"] == body["iccid"] and event.event_metadata["provisioning_ref"]
    shown = client.get(f"/orders/{order['id']}", headers=shop["headers"]).json()
    assert shown["status"] == "activated"
    assert shown["esim"] == {"iccid": body["iccid"], "activation_code": body["activation_code"]}


def test_admin_can_activate_a_customers_order(client, db, shop):
    order = new_order(client, shop)
    db.execute(Order.__table__.update().where(Order.id == order["id"]).values(status="paid"))
    assert client.post(f"/orders/{order['id']}/activate", headers=shop["admin"]).status_code == 200


def test_unpaid_order_cannot_be_activated(client, db, shop):
    order = new_order(client, shop)
    response = client.post(f"/orders/{order['id']}/activate", headers=shop["headers"])
    assert response.status_code == 409
    assert "must be paid" in response.json()["detail"]
    assert events(db, "esim_activated") == 0


def test_out_of_stock_is_409_and_the_order_stays_paid(client, db, shop):
    orders = [new_order(client, shop) for _ in range(3)]
    for index, order in enumerate(orders):
        intent_id = intent_for(client, shop, order)["payment_intent_id"]
        post_webhook(client, stripe_event(f"evt_{index}", "payment_intent.succeeded", intent_id, 1999, "eur"))
    statuses = [client.post(f"/orders/{o['id']}/activate", headers=shop["headers"]).status_code for o in orders]
    assert statuses == [200, 200, 409]
    last = client.post(f"/orders/{orders[2]['id']}/activate", headers=shop["headers"])
    assert "No eSIM profile left" in last.json()["detail"]
    assert status_of(client, shop, orders[2]) == "paid"
    assert events(db, "esim_activated") == 2


def test_cookie_authenticated_changes_from_another_site_are_refused(client, db, shop, mailbox):
    client.post("/auth/request-code", json={"email": "cookie@shop.test"})
    client.post("/auth/verify-code", json={"email": "cookie@shop.test", "code": mailbox.last_code("cookie@shop.test")})
    body = {"plan_id": shop["plan"].id}
    refused = client.post("/orders", json=body, headers={"Origin": "http://evil.test"})
    assert refused.status_code == 403 and "Cross-site" in refused.json()["detail"]
    assert client.post("/orders", json=body, headers={"Referer": "http://evil.test/page"}).status_code == 403
    assert client.post("/auth/logout", headers={"Origin": "null"}).status_code == 403
    assert events(db, "checkout_started") == 0
    assert client.post("/orders", json=body, headers={"Origin": "http://testserver"}).status_code == 201
    assert client.post("/orders", json=body, headers={"Origin": "http://shop.test"}).status_code == 201  # CORS_ORIGINS
    assert client.post("/orders", json=body).status_code == 201  # no Origin: not a browser's cross-site request
    assert client.get("/auth/me", headers={"Origin": "http://evil.test"}).status_code == 200  # reads are not changes
    client.cookies.clear()
    assert client.post("/orders", json=body, headers={**shop["headers"], "Origin": "http://evil.test"}).status_code == 201
    assert events(db, "checkout_started") == 4
