"""Support: order search and problem filters, an order's timeline, eSIM stock and the stock-out refusal."""

import datetime as dt

import pytest

from app.models.order import OrderStatus
from app.services import support
from tests import factories
from tests.finance_helpers import admin_token
from tests.helpers import auth, login, post_webhook, stripe_event

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def orders(db):
    """Five orders of two customers in known states (ids in creation order)."""
    plan = factories.create_plan(db, name="Japan 5 GB", price_minor_units=1999, currency="USD")
    alice = factories.create_user(db, email="alice.smith@example.com", signup=False)
    bob = factories.create_user(db, email="bob_jones@example.com", signup=False)
    made = {}
    for name, user, status, paid_hours_ago, refunded in [
        ("stuck", alice, OrderStatus.PAID, 3, 0),
        ("fresh", alice, OrderStatus.PAID, 0.5, 0),
        ("failed", bob, OrderStatus.PAYMENT_FAILED, None, 0),
        ("activated", bob, OrderStatus.ACTIVATED, 30, 500),
        ("refunded", bob, OrderStatus.REFUNDED, 50, 1999),
    ]:
        order = factories.create_order(db, user=user, plan=plan, status=status, payment_intent_id=f"pi_{name}")
        order.paid_at = NOW - dt.timedelta(hours=paid_hours_ago) if paid_hours_ago is not None else None
        order.refunded_minor_units = refunded
        made[name] = order
    profile = factories.create_profiles(db, plan=plan, count=1)[0]
    profile.order_id, profile.assigned_at = made["activated"].id, NOW - dt.timedelta(hours=29)
    db.flush()
    return made, profile


def ids(found, orders, *names):
    return [o["id"] for o in found["orders"]] == [orders[n].id for n in names]


def test_problem_filters(db, orders):
    made, _ = orders
    found = lambda **kw: support.find_orders(db, now=NOW, **kw)  # noqa: E731
    assert ids(found(problem=support.Problem.PAID_NOT_ACTIVATED), made, "stuck")  # 'fresh' was paid 30 minutes ago
    assert ids(found(problem=support.Problem.PAYMENT_FAILED), made, "failed")
    assert ids(found(problem=support.Problem.REFUNDED), made, "refunded", "activated")  # newest first
    assert found()["problems"] == {"paid_not_activated": 1, "payment_failed": 1, "refunded": 2}
    assert ids(found(status=OrderStatus.PAID), made, "fresh", "stuck")


def test_search_by_order_id_email_iccid_and_intent(db, orders):
    made, profile = orders
    found = lambda q: support.find_orders(db, q=q, now=NOW)  # noqa: E731
    assert ids(found(str(made["failed"].id)), made, "failed")
    assert ids(found("ALICE.SMITH"), made, "fresh", "stuck")  # part of the email, any case
    assert ids(found("bob_"), made, "refunded", "activated", "failed")  # '_' is a character, not a wildcard
    assert ids(found("b%b"), made)
    assert ids(found(profile.iccid), made, "activated")
    assert ids(found("pi_stuck"), made, "stuck")
    assert found("99999999999")["total"] == 0


def test_pages_are_stable_and_the_total_is_all_matches(db, orders):
    made, _ = orders
    first = support.find_orders(db, limit=2, offset=0, now=NOW)
    second = support.find_orders(db, limit=2, offset=2, now=NOW)
    third = support.find_orders(db, limit=2, offset=4, now=NOW)
    assert first["total"] == second["total"] == third["total"] == 5
    assert [o["id"] for o in first["orders"] + second["orders"] + third["orders"]] == sorted((o.id for o in made.values()), reverse=True)


def test_orders_api_validates_and_requires_an_admin(client, db, orders, mailbox):
    headers = admin_token(db)
    body = client.get("/admin/orders?problem=refunded&limit=1", headers=headers).json()
    assert body["total"] == 2 and body["limit"] == 1 and len(body["orders"]) == 1
    row = body["orders"][0]
    assert {k: row[k] for k in ("status", "email", "plan_name", "amount_minor_units", "currency", "refunded_minor_units")} == {
        "status": "refunded", "email": "bob_jones@example.com", "plan_name": "Japan 5 GB",
        "amount_minor_units": 1999, "currency": "USD", "refunded_minor_units": 1999,
    }
    for bad in ("limit=0", "limit=201", "offset=-1"):
        response = client.get(f"/admin/orders?{bad}", headers=headers)
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"][1] == bad.split("=")[0]
    assert client.get("/admin/orders?problem=lost", headers=headers).json()["detail"] == (
        "problem: 'lost' is not one of paid_not_activated, payment_failed, refunded")
    assert client.get("/admin/orders?status=shipped", headers=headers).json()["detail"].startswith("status: 'shipped' is not one of pending")
    assert client.get("/admin/orders?status=&problem=", headers=headers).json()["total"] == 5
    assert client.get("/admin/orders").status_code == 401
    customer = auth(login(client, mailbox, "nosy@shop.test")["access_token"])
    assert client.get("/admin/orders", headers=customer).status_code == 403
    assert client.get("/admin/orders/1", headers=customer).status_code == 403


def test_timeline_lists_events_webhooks_and_refunds_in_time_order(client, db, mailbox, settings, monkeypatch):
    plan = factories.create_plan(db, price_minor_units=1500, currency="USD")
    factories.create_profiles(db, plan=plan, count=1)
    customer = auth(login(client, mailbox, "timeline@shop.test")["access_token"])
    admin = auth(login(client, mailbox, "admin@shop.test")["access_token"])
    order = client.post("/orders", json={"plan_id": plan.id}, headers=customer).json()
    intent = client.post(f"/orders/{order['id']}/payment-intent", headers=customer).json()["payment_intent_id"]
    post_webhook(client, stripe_event("evt_fail", "payment_intent.payment_failed", intent, 1500, "usd"))
    post_webhook(client, stripe_event("evt_paid", "payment_intent.succeeded", intent, 1500, "usd"))
    client.post(f"/orders/{order['id']}/activate", headers=customer)
    client.post(f"/admin/orders/{order['id']}/refund", json={"amount_minor_units": 500}, headers=admin)
    body = client.get(f"/admin/orders/{order['id']}", headers=admin).json()
    assert body["order"]["status"] == "activated" and body["order"]["refunded_minor_units"] == 500
    assert [(e["kind"], e["type"]) for e in body["timeline"]] == [
        ("event", "checkout_started"),
        ("webhook", "payment_intent.payment_failed"),
        ("event", "payment_failed"),
        ("webhook", "payment_intent.succeeded"),
        ("event", "payment_succeeded"),
        ("event", "esim_activated"),
        ("event", "payment_refunded"),
        ("refund", "refund"),
    ]
    times = [e["at"] for e in body["timeline"]]
    assert times == sorted(times)
    assert body["timeline"][1]["detail"] == {"provider_event_id": "evt_fail", "outcome": "payment_failed", "provider": "sandbox"}
    assert client.get("/admin/orders/424242", headers=admin).status_code == 404


def test_inventory_days_of_stock_at_the_last_14_days_rate(db):
    busy = factories.create_plan(db, name="Busy")
    quiet = factories.create_plan(db, name="Quiet")
    empty = factories.create_plan(db, name="Empty")
    user = factories.create_user(db, signup=False)
    profiles = factories.create_profiles(db, plan=busy, count=10)
    # 7 activations in the last 14 days (one 20 days ago does not count): 0.5 a day, 3 free → 6 days left, flagged.
    for index, profile in enumerate(profiles[:8]):
        order = factories.create_order(db, user=user, plan=busy, status=OrderStatus.ACTIVATED)
        profile.order_id = order.id
        profile.assigned_at = NOW - dt.timedelta(days=20 if index == 0 else index)
    factories.create_profiles(db, plan=quiet, count=4)
    db.flush()
    body = support.inventory(db, now=NOW)
    rows = {p["plan_name"]: p for p in body["plans"]}
    assert {k: rows["Busy"][k] for k in ("available_profiles", "activations_last_14_days", "activations_per_day", "days_of_stock_left", "low_stock")} == {
        "available_profiles": 2, "activations_last_14_days": 7, "activations_per_day": 0.5, "days_of_stock_left": 4.0, "low_stock": True,
    }
    assert (rows["Quiet"]["days_of_stock_left"], rows["Quiet"]["low_stock"]) == (None, False)  # no activations: no rate
    assert (rows["Empty"]["available_profiles"], rows["Empty"]["low_stock"]) == (0, True)
    assert [p["plan_name"] for p in body["plans"]][:2] == ["Empty", "Busy"]
    assert (body["window_days"], body["low_stock_days"]) == (14, 7)


def test_a_plan_without_stock_cannot_be_ordered_unless_backorders_are_allowed(client, db, mailbox, settings, monkeypatch):
    plan = factories.create_plan(db, name="Sold out")
    customer = auth(login(client, mailbox, "late@shop.test")["access_token"])
    refused = client.post("/orders", json={"plan_id": plan.id}, headers=customer)
    assert refused.status_code == 409
    assert refused.json()["detail"] == f"Plan {plan.id} (Sold out) is out of stock: no eSIM profile is available, so it cannot be ordered now"
    headers = admin_token(db)
    assert client.get("/admin/orders", headers=headers).json()["total"] == 0
    monkeypatch.setattr(settings, "allow_backorders", True)
    assert client.post("/orders", json={"plan_id": plan.id}, headers=customer).status_code == 201
    inventory = client.get("/admin/inventory", headers=headers).json()
    assert [p for p in inventory["plans"] if p["plan_id"] == plan.id][0]["available_profiles"] == 0
