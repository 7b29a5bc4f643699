"""The sandbox's pay step, end to end through HTTP: order → intent → pay → activate, and the
dashboard's figures move by exactly one order (every database)."""

import pytest
from sqlalchemy import func, select

from app.config import Settings, get_settings
from app.main import app
from app.models.analytics import AnalyticsEvent
from tests import factories
from tests.helpers import auth, login, post_webhook, stripe_event

COUNTS = ("user_signup", "checkout_started", "payment_succeeded", "esim_activated")


@pytest.fixture
def shop(client, db, mailbox):
    plan = factories.create_plan(db, name="Japan 5 GB", price_minor_units=1999, currency="USD")
    factories.create_profiles(db, plan=plan, count=1)
    admin = auth(login(client, mailbox, "admin@shop.test")["access_token"])
    customer = auth(login(client, mailbox, "sandbox-buyer@shop.test")["access_token"])
    return {"plan": plan, "admin": admin, "customer": customer}


def today_figures(client, admin) -> dict:
    overview = client.get("/admin/analytics/overview", headers=admin)
    assert overview.status_code == 200, overview.text
    body = overview.json()
    return {"counts": body["counts"], "unique": body["unique_users"], "revenue": body["revenue"]}


def test_order_intent_pay_activate_moves_the_dashboard_by_one(client, db, shop):
    before = today_figures(client, shop["admin"])
    customer = shop["customer"]
    order = client.post("/orders", json={"plan_id": shop["plan"].id}, headers=customer).json()
    intent = client.post(f"/orders/{order['id']}/payment-intent", headers=customer).json()
    assert intent["status"] == "requires_payment_method"
    assert client.post(f"/orders/{order['id']}/activate", headers=customer).status_code == 409

    paid = client.post(f"/orders/{order['id']}/payment-intent/confirm", headers=customer)
    assert paid.status_code == 200, paid.text
    assert paid.json() == {"payment_intent_id": intent["payment_intent_id"], "client_secret": intent["client_secret"], "status": "succeeded"}
    assert client.get(f"/orders/{order['id']}", headers=customer).json()["status"] == "paid"
    # Again: the same answer, no second payment.
    assert client.post(f"/orders/{order['id']}/payment-intent/confirm", headers=customer).json() == paid.json()
    # The provider's webhook for the same intent afterwards changes nothing either.
    late = stripe_event("evt_late", "payment_intent.succeeded", intent["payment_intent_id"], 1999, "usd")
    assert post_webhook(client, late).json()["outcome"] == "no_change"

    activated = client.post(f"/orders/{order['id']}/activate", headers=customer)
    assert activated.status_code == 200, activated.text
    assert activated.json()["status"] == "activated"

    after = today_figures(client, shop["admin"])
    assert after["counts"] == {
        "user_signup": before["counts"]["user_signup"],
        "checkout_started": before["counts"]["checkout_started"] + 1,
        "payment_succeeded": before["counts"]["payment_succeeded"] + 1,
        "esim_activated": before["counts"]["esim_activated"] + 1,
    }
    assert after["revenue"] == {"USD": before["revenue"].get("USD", 0) + 1999}
    assert after["unique"]["payment_succeeded"] == before["unique"]["payment_succeeded"] + 1
    payment = db.scalar(select(AnalyticsEvent).where(AnalyticsEvent.order_id == order["id"], AnalyticsEvent.event_type == "payment_succeeded"))
    assert payment.event_metadata == {"payment_intent_id": intent["payment_intent_id"], "provider": "sandbox", "source": "sandbox_confirm"}


def test_confirm_before_an_intent_says_which_step_comes_first(client, shop):
    order = client.post("/orders", json={"plan_id": shop["plan"].id}, headers=shop["customer"]).json()
    response = client.post(f"/orders/{order['id']}/payment-intent/confirm", headers=shop["customer"])
    assert (response.status_code, response.json()) == (
        409, {"detail": f"Order {order['id']} has no payment intent yet: POST /orders/{order['id']}/payment-intent first"}
    )


def test_only_the_customer_confirms_their_order(client, mailbox, shop):
    order = client.post("/orders", json={"plan_id": shop["plan"].id}, headers=shop["customer"]).json()
    client.post(f"/orders/{order['id']}/payment-intent", headers=shop["customer"])
    stranger = auth(login(client, mailbox, "stranger@shop.test")["access_token"])
    assert client.post(f"/orders/{order['id']}/payment-intent/confirm", headers=stranger).status_code == 404
    assert client.post(f"/orders/{order['id']}/payment-intent/confirm", headers=shop["admin"]).status_code == 403
    assert client.post(f"/orders/{order['id']}/payment-intent/confirm").status_code == 401
    assert client.get(f"/orders/{order['id']}", headers=shop["customer"]).json()["status"] == "pending"


@pytest.mark.parametrize(
    "overrides",
    [{"payment_provider": "stripe", "stripe_secret_key": "sk_test_123"}, {"app_env": "production"}],
)
def test_refused_with_stripe_or_in_production(client, db, shop, overrides):
    order = client.post("/orders", json={"plan_id": shop["plan"].id}, headers=shop["customer"]).json()
    client.post(f"/orders/{order['id']}/payment-intent", headers=shop["customer"])
    events_before = db.scalar(select(func.count()).select_from(AnalyticsEvent))
    app.dependency_overrides[get_settings] = lambda: Settings(**overrides)
    try:
        response = client.post(f"/orders/{order['id']}/payment-intent/confirm", headers=shop["customer"])
    finally:
        app.dependency_overrides.pop(get_settings)
    assert (response.status_code, response.json()) == (
        404, {"detail": "Sandbox payments are off: they need PAYMENT_PROVIDER=sandbox and APP_ENV other than production"}
    )
    assert client.get(f"/orders/{order['id']}", headers=shop["customer"]).json()["status"] == "pending"
    assert db.scalar(select(func.count()).select_from(AnalyticsEvent)) == events_before


def test_auto_confirm_pays_at_the_intent(client, shop):
    app.dependency_overrides[get_settings] = lambda: Settings(payment_sandbox_auto_confirm=True)
    try:
        order = client.post("/orders", json={"plan_id": shop["plan"].id}, headers=shop["customer"]).json()
        intent = client.post(f"/orders/{order['id']}/payment-intent", headers=shop["customer"]).json()
    finally:
        app.dependency_overrides.pop(get_settings)
    assert intent["status"] == "succeeded"
    assert client.post(f"/orders/{order['id']}/activate", headers=shop["customer"]).json()["status"] == "activated"
