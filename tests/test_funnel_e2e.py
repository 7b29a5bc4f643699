"""End to end through HTTP only: several customers go through the funnel, some paying by
auto-confirmed intents, some by redelivered and duplicate webhooks; the overview counts each fact once."""

import pytest

from tests.helpers import auth, login, post_webhook, stripe_event, valid_iccid


class Storefront:
    def __init__(self, client, mailbox, settings, monkeypatch):
        self.client, self.mailbox, self.settings, self.monkeypatch = client, mailbox, settings, monkeypatch
        self.admin = self.log_in("admin@shop.test")
        self.europe = self.add_plan("Europe 5 GB", 1999, "usd", profiles=3)
        self.asia = self.add_plan("Asia 10 GB", 2500, "EUR", profiles=3)  # one left for the last checkout

    def log_in(self, email: str) -> dict:
        return auth(login(self.client, self.mailbox, email)["access_token"])

    def add_plan(self, name: str, price: int, currency: str, profiles: int) -> int:
        body = {"name": name, "region": name.split()[0], "data_mb": 5120, "validity_days": 30, "price_minor_units": price, "currency": currency}
        plan = self.client.post("/admin/plans", json=body, headers=self.admin)
        assert plan.status_code == 201, plan.text
        plan_id = plan.json()["id"]
        batch = [{"iccid": valid_iccid(f"894400000{plan_id:06d}00{i}"), "activation_code": f"LPA:1$smdp.test${plan_id}-{i}"} for i in range(profiles)]
        assert self.client.post(f"/admin/plans/{plan_id}/esim-profiles", json={"profiles": batch}, headers=self.admin).status_code == 201
        return plan_id

    def order(self, customer: dict, plan_id: int) -> int:
        response = self.client.post("/orders", json={"plan_id": plan_id}, headers=customer)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def intent(self, customer: dict, order_id: int, *, auto_confirm: bool = False) -> dict:
        with self.monkeypatch.context() as patch:
            patch.setattr(self.settings, "payment_sandbox_auto_confirm", auto_confirm)
            response = self.client.post(f"/orders/{order_id}/payment-intent", headers=customer)
        assert response.status_code == 200, response.text
        return response.json()

    def webhook(self, event_id: str, event_type: str, intent_id: str, amount: int, currency: str) -> None:
        response = post_webhook(self.client, stripe_event(event_id, event_type, intent_id, amount, currency))
        assert 200 <= response.status_code < 300, response.text

    def status(self, customer: dict, order_id: int) -> str:
        return self.client.get(f"/orders/{order_id}", headers=customer).json()["status"]

    def activate(self, customer: dict, order_id: int) -> dict:
        response = self.client.post(f"/orders/{order_id}/activate", headers=customer)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def shop(client, mailbox, settings, monkeypatch):
    return Storefront(client, mailbox, settings, monkeypatch)


def test_funnel_counts_each_fact_once(shop, client):
    alice, bob, carol, dave = (shop.log_in(f"{name}@shop.test") for name in ("alice", "bob", "carol", "dave"))
    shop.log_in("Erin@Shop.Test")  # signs up and never orders
    assert client.post("/auth/request-code", json={"email": " erin@shop.test"}).status_code == 202  # not a new signup

    # Alice pays two orders by auto-confirmed intents; asking again changes nothing.
    for plan_id in (shop.europe, shop.asia):
        order_id = shop.order(alice, plan_id)
        intent = shop.intent(alice, order_id, auto_confirm=True)
        assert intent["status"] == "succeeded" and shop.status(alice, order_id) == "paid"
        first = shop.activate(alice, order_id)
        assert shop.activate(alice, order_id) == first

    # Bob's payment arrives three times with one event id and once more under another id.
    bob_order = shop.order(bob, shop.asia)
    bob_intent = shop.intent(bob, bob_order)["payment_intent_id"]
    for event_id in ("evt_bob_1", "evt_bob_1", "evt_bob_1", "evt_bob_2"):
        shop.webhook(event_id, "payment_intent.succeeded", bob_intent, 2500, "eur")
    assert shop.status(bob, bob_order) == "paid"
    shop.activate(bob, bob_order)

    # Carol's first attempt fails, the retry succeeds (delivered twice); she does not activate.
    carol_order = shop.order(carol, shop.europe)
    carol_intent = shop.intent(carol, carol_order)["payment_intent_id"]
    shop.webhook("evt_carol_1", "payment_intent.payment_failed", carol_intent, 1999, "usd")
    assert shop.status(carol, carol_order) == "payment_failed"
    shop.webhook("evt_carol_2", "payment_intent.succeeded", carol_intent, 1999, "usd")
    shop.webhook("evt_carol_2", "payment_intent.succeeded", carol_intent, 1999, "usd")
    assert shop.status(carol, carol_order) == "paid"

    # Dave's payment reports the wrong amount, and his second checkout is never paid.
    dave_order = shop.order(dave, shop.europe)
    dave_intent = shop.intent(dave, dave_order)["payment_intent_id"]
    shop.webhook("evt_dave_1", "payment_intent.succeeded", dave_intent, 999, "usd")
    shop.webhook("evt_dave_2", "payment_intent.succeeded", dave_intent, 1999, "eur")
    assert shop.status(dave, dave_order) == "pending"
    shop.order(dave, shop.asia)

    overview = client.get("/admin/analytics/overview", headers=shop.admin)
    assert overview.status_code == 200, overview.text
    body = overview.json()
    expected_counts = {"user_signup": 6, "checkout_started": 6, "payment_succeeded": 4, "esim_activated": 3}
    assert body["counts"] == expected_counts
    assert body["unique_users"] == {"user_signup": 6, "checkout_started": 4, "payment_succeeded": 3, "esim_activated": 2}
    assert body["event_count_ratios"] == {
        "signup_to_checkout": 1.0,
        "checkout_to_payment": 4 / 6,
        "payment_to_activation": 3 / 4,
        "signup_to_activation": 0.5,
    }
    # People: of the 6 signups (the admin and Erin never check out) Alice, Bob, Carol and Dave
    # check out, all but Dave pay, Alice and Bob activate.
    assert body["conversion"] == {
        "signup_to_checkout": 4 / 6,
        "checkout_to_payment": 3 / 4,
        "payment_to_activation": 2 / 3,
        "signup_to_activation": 2 / 6,
    }
    assert body["revenue"] == {"EUR": 5000, "USD": 3998}
    assert body["previous"]["counts"] == dict.fromkeys(expected_counts, 0)
    assert body["top_plans"] == [
        {"plan_id": shop.asia, "plan_name": "Asia 10 GB", "currency": "EUR", "revenue_minor_units": 5000, "payments": 2},
        {"plan_id": shop.europe, "plan_name": "Europe 5 GB", "currency": "USD", "revenue_minor_units": 3998, "payments": 2},
    ]
    series = client.get("/admin/analytics/timeseries", headers=shop.admin).json()
    assert series["buckets"][-1]["date"] == body["end_date"]
    assert {t: sum(b["counts"][t] for b in series["buckets"]) for t in expected_counts} == expected_counts
    assert series["buckets"][-1]["revenue"] == {"EUR": 5000, "USD": 3998}
