"""Refunds by webhook and by the admin: once per refund id, never above the paid amount, net = gross − refunds."""

import json

import pytest
from sqlalchemy import func, select

from app.models.analytics import AnalyticsEvent
from app.models.finance import Refund
from app.models.order import Order
from tests import factories
from tests.helpers import auth, login, post_webhook, stripe_event


@pytest.fixture
def shop(client, db, mailbox, settings, monkeypatch):
    """A paid €20.00 order (auto-confirmed sandbox intent) and an admin."""
    plan = factories.create_plan(db, name="Europe 5 GB", price_minor_units=2000, currency="EUR")
    factories.create_profiles(db, plan=plan, count=3)
    customer = auth(login(client, mailbox, "payer@shop.test")["access_token"])
    admin = auth(login(client, mailbox, "admin@shop.test")["access_token"])

    def paid_order():
        order = client.post("/orders", json={"plan_id": plan.id}, headers=customer).json()
        monkeypatch.setattr(settings, "payment_sandbox_auto_confirm", True)
        intent = client.post(f"/orders/{order['id']}/payment-intent", headers=customer).json()
        monkeypatch.setattr(settings, "payment_sandbox_auto_confirm", False)
        assert intent["status"] == "succeeded"
        return order["id"], intent["payment_intent_id"]

    return {"plan": plan, "customer": customer, "admin": admin, "paid_order": paid_order}


def refund_object(refund_id, intent_id, amount, status="succeeded", currency="eur"):
    return {"id": refund_id, "object": "refund", "payment_intent": intent_id, "amount": amount, "currency": currency, "status": status}


def refund_webhook(event_id, event_type, refund):
    return json.dumps({"id": event_id, "object": "event", "type": event_type, "data": {"object": refund}}).encode()


def charge_refunded(event_id, intent_id, refunds):
    charge = {"id": "ch_1", "object": "charge", "payment_intent": intent_id, "amount": 2000,
              "amount_refunded": sum(r["amount"] for r in refunds if r["status"] == "succeeded"),
              "currency": "eur", "refunded": False, "refunds": {"object": "list", "data": refunds}}
    return json.dumps({"id": event_id, "object": "event", "type": "charge.refunded", "data": {"object": charge}}).encode()


def state(db, order_id):
    db.expire_all()
    order = db.get(Order, order_id)
    events = db.execute(
        select(AnalyticsEvent.amount_minor_units).where(AnalyticsEvent.order_id == order_id, AnalyticsEvent.event_type == "payment_refunded")
        .order_by(AnalyticsEvent.id)
    ).scalars().all()
    refunds = db.scalar(select(func.count()).select_from(Refund).where(Refund.order_id == order_id))
    return order.status, order.refunded_minor_units, events, refunds


def test_partial_then_full_refund_by_webhooks_delivered_twice_and_out_of_order(client, db, shop):
    order_id, intent = shop["paid_order"]()
    # refund.updated (succeeded) of re_2 arrives before anything about re_1.
    second = refund_webhook("evt_r2_upd", "refund.updated", refund_object("re_2", intent, 1500))
    assert post_webhook(client, second).json()["outcome"] == "partially_refunded"
    assert post_webhook(client, second).json()["outcome"] == "duplicate"  # same event id: the inbox stops it
    assert state(db, order_id) == ("paid", 1500, [1500], 1)
    # re_1 created (pending: not counted), then the charge.refunded listing both; then re_1's own update.
    pending = refund_webhook("evt_r1_new", "refund.created", refund_object("re_1", intent, 500, status="pending"))
    assert post_webhook(client, pending).json()["outcome"] == "refund_pending"
    assert state(db, order_id) == ("paid", 1500, [1500], 1)
    listing = charge_refunded("evt_ch_ref", intent, [refund_object("re_1", intent, 500), refund_object("re_2", intent, 1500)])
    assert post_webhook(client, listing).json()["outcome"] == "refunded"
    late = refund_webhook("evt_r1_upd", "refund.updated", refund_object("re_1", intent, 500))
    assert post_webhook(client, late).json()["outcome"] == "duplicate"  # another event id, the same refund id
    assert state(db, order_id) == ("refunded", 2000, [1500, 500], 2)


def test_a_refund_above_what_is_left_is_not_counted(client, db, shop):
    order_id, intent = shop["paid_order"]()
    too_much = refund_webhook("evt_big", "refund.created", refund_object("re_big", intent, 2001))
    assert post_webhook(client, too_much).json()["outcome"] == "refund_refused"
    other_currency = refund_webhook("evt_usd", "refund.created", refund_object("re_usd", intent, 100, currency="usd"))
    assert post_webhook(client, other_currency).json()["outcome"] == "refund_refused"
    assert state(db, order_id) == ("paid", 0, [], 0)


def test_admin_refunds_through_the_same_path(client, db, shop):
    order_id, _ = shop["paid_order"]()
    partial = client.post(f"/admin/orders/{order_id}/refund", json={"amount_minor_units": 750}, headers=shop["admin"])
    assert partial.status_code == 200, partial.text
    body = partial.json()
    assert body["refund_id"].startswith("re_")
    assert (body["outcome"], body["status"], body["amount_minor_units"], body["refunded_minor_units"]) == ("partially_refunded", "paid", 750, 750)
    too_much = client.post(f"/admin/orders/{order_id}/refund", json={"amount_minor_units": 1251}, headers=shop["admin"])
    assert too_much.status_code == 422
    assert too_much.json()["detail"] == "amount_minor_units: 1251 is more than the 1250 EUR left to refund on order %d" % order_id
    rest = client.post(f"/admin/orders/{order_id}/refund", headers=shop["admin"])
    assert (rest.json()["outcome"], rest.json()["status"], rest.json()["amount_minor_units"]) == ("refunded", "refunded", 1250)
    again = client.post(f"/admin/orders/{order_id}/refund", headers=shop["admin"])
    assert again.status_code == 409 and again.json()["detail"] == f"Order {order_id} is already fully refunded"
    assert state(db, order_id) == ("refunded", 2000, [750, 1250], 2)
    # A refunded order cannot be activated.
    assert client.post(f"/orders/{order_id}/activate", headers=shop["customer"]).status_code == 409


@pytest.mark.parametrize("body", [{"amount_minor_units": 0}, {"amount_minor_units": -5}, {"amount_minor_units": "10"}, {"amount": 10}])
def test_bad_refund_bodies_are_422_and_change_nothing(client, db, shop, body):
    order_id, _ = shop["paid_order"]()
    response = client.post(f"/admin/orders/{order_id}/refund", json=body, headers=shop["admin"])
    assert response.status_code == 422
    assert state(db, order_id) == ("paid", 0, [], 0)


def test_an_unpaid_order_cannot_be_refunded(client, db, shop):
    order = client.post("/orders", json={"plan_id": shop["plan"].id}, headers=shop["customer"]).json()
    response = client.post(f"/admin/orders/{order['id']}/refund", headers=shop["admin"])
    assert response.status_code == 409
    assert response.json()["detail"] == f"Order {order['id']} is pending; only a paid order can be refunded"
    assert client.post("/admin/orders/987654/refund", headers=shop["admin"]).status_code == 404
    assert client.post(f"/admin/orders/{order['id']}/refund", headers=shop["customer"]).status_code == 403
    assert db.scalar(select(func.count()).select_from(Refund)) == 0


def test_overview_net_is_gross_minus_refunds_and_equals_a_recount(client, db, shop):
    first, intent = shop["paid_order"]()
    second, _ = shop["paid_order"]()
    shop["paid_order"]()
    post_webhook(client, refund_webhook("evt_a", "refund.updated", refund_object("re_a", intent, 300)))
    client.post(f"/admin/orders/{second}/refund", headers=shop["admin"])
    body = client.get("/admin/analytics/overview", headers=shop["admin"]).json()
    assert body["revenue"] == {"EUR": 6000}
    assert body["refunds"] == {"EUR": 2300}
    assert body["net_revenue"] == {"EUR": 3700}
    recount = db.execute(
        select(AnalyticsEvent.event_type, func.sum(AnalyticsEvent.amount_minor_units)).where(AnalyticsEvent.currency == "EUR")
        .where(AnalyticsEvent.event_type.in_(["payment_succeeded", "payment_refunded"])).group_by(AnalyticsEvent.event_type)
    ).all()
    assert dict(recount) == {"payment_succeeded": 6000, "payment_refunded": 2300}
    assert body["counts"] == {"user_signup": 2, "checkout_started": 3, "payment_succeeded": 3, "esim_activated": 0}
    assert body["average_order_value"] == {"EUR": 2000}
    assert db.get(Order, first).status == "paid"


def test_failed_attempts_are_counted_once_each(client, db, shop):
    order = client.post("/orders", json={"plan_id": shop["plan"].id}, headers=shop["customer"]).json()
    intent = client.post(f"/orders/{order['id']}/payment-intent", headers=shop["customer"]).json()["payment_intent_id"]
    failure = stripe_event("evt_f1", "payment_intent.payment_failed", intent, 2000, "eur")
    assert post_webhook(client, failure).json()["outcome"] == "payment_failed"
    assert post_webhook(client, failure).json()["outcome"] == "duplicate"
    # A second attempt fails (another charge), then one succeeds; the first failure's other event id names the same charge.
    for event_id, charge in (("evt_f2", "ch_2"), ("evt_f3", "ch_2")):
        payload = json.loads(stripe_event(event_id, "payment_intent.payment_failed", intent, 2000, "eur"))
        payload["data"]["object"]["latest_charge"] = charge
        post_webhook(client, json.dumps(payload).encode())
    post_webhook(client, stripe_event("evt_ok", "payment_intent.succeeded", intent, 2000, "eur"))
    failed = db.scalars(select(AnalyticsEvent.dedupe_key).where(AnalyticsEvent.event_type == "payment_failed").order_by(AnalyticsEvent.id)).all()
    assert failed == ["payment_failed:evt_f1", "payment_failed:ch_2"]
    body = client.get("/admin/analytics/overview", headers=shop["admin"]).json()
    assert body["payments_failed"] == 2
    assert body["payment_failure_rate"] == 2 / 3
    assert "payment_failed" not in body["counts"]  # not a funnel step
    day = client.get("/admin/analytics/timeseries", headers=shop["admin"]).json()["buckets"][-1]
    assert (day["payments_failed"], day["payment_failure_rate"]) == (2, 2 / 3)
