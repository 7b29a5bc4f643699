"""A model of the shop driven through HTTP in random order, checked after every step.

Hypothesis mixes signups (also repeated, in other letter cases), checkouts, payment
intents (paid at once or not), payment webhooks (succeeded, failed, wrong amount,
redelivered, in any order), activations until the inventory runs out, and restocking.
After each step: every order is in the state the model says, reached only by allowed
transitions; the events table holds at most one event per business fact, and
`payment_succeeded` only for paid orders; the overview and the timeseries equal a
recount of the model.
"""

import datetime as dt
import itertools
from collections import Counter
from dataclasses import dataclass, field

import hypothesis
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import text

from app.main import app
from tests.conftest import MAIL_DIR, empty_tables
from tests.helpers import Mailbox, auth, login, post_webhook, stripe_event, valid_iccid

ALLOWED = {("pending", "paid"), ("pending", "payment_failed"), ("payment_failed", "paid"), ("paid", "activated")}
EMAILS = ["ann@shop.test", "bob@shop.test", "cyd@shop.test"]
PLANS = [("Europe 5 GB", 1999, "USD", 1), ("Asia 1 GB", 500, "EUR", 0)]  # name, price, currency, eSIM profiles in stock
_serial = itertools.count(1)


@dataclass
class ModelOrder:
    id: int
    email: str
    plan: int  # index into PLANS
    status: str = "pending"
    intent: str | None = None
    iccid: str | None = None
    history: list[str] = field(default_factory=lambda: ["pending"])


class ShopMachine(RuleBasedStateMachine):
    engine = None
    settings = None
    seen: Counter = Counter()  # across the whole run: proves the interesting cases were reached

    def __init__(self):
        super().__init__()
        empty_tables(self.engine)
        self.client = TestClient(app).__enter__()
        self.mailbox = Mailbox(MAIL_DIR)
        self.admin = auth(login(self.client, self.mailbox, "admin@shop.test")["access_token"])
        self.signed_up = {"admin@shop.test"}
        self.code_requests: dict[str, int] = {}
        self.tokens: dict[str, dict] = {}
        self.plan_ids: list[int] = []
        self.free_profiles: list[int] = []
        for name, price, currency, profiles in PLANS:
            body = {"name": name, "region": "World", "data_mb": 1024, "validity_days": 7, "price_minor_units": price, "currency": currency}
            response = self.client.post("/admin/plans", json=body, headers=self.admin)
            assert response.status_code == 201, response.text
            self.plan_ids.append(response.json()["id"])
            self.free_profiles.append(0)
            if profiles:
                self._restock(len(self.plan_ids) - 1, profiles)
        self.orders: list[ModelOrder] = []
        self.ran_out = False
        self.sent_events: list[tuple[bytes, str]] = []  # (payload, outcome of its first delivery)
        self.sign_up_and_log_in(EMAILS[0], shout=False)  # someone can shop from the first step

    def teardown(self):
        self.client.__exit__(None, None, None)
        empty_tables(self.engine)

    def _restock(self, plan: int, count: int) -> None:
        plan_id = self.plan_ids[plan]
        batch = [
            {"iccid": valid_iccid(f"8944{plan_id:04d}{next(_serial):010d}"), "activation_code": f"LPA:1$smdp.test${next(_serial)}"}
            for _ in range(count)
        ]
        response = self.client.post(f"/admin/plans/{plan_id}/esim-profiles", json={"profiles": batch}, headers=self.admin)
        assert response.status_code == 201, response.text
        self.free_profiles[plan] += count

    def _move(self, order: ModelOrder, status: str) -> None:
        assert (order.status, status) in ALLOWED, f"model bug: {order.status} -> {status}"
        order.status = status
        order.history.append(status)

    # ---- rules -------------------------------------------------------------------------

    @rule(which=st.sampled_from(EMAILS), shout=st.booleans())
    def sign_up_and_log_in(self, which, shout):
        typed = f"  {which.upper()} " if shout else which
        response = self.client.post("/auth/request-code", json={"email": typed})
        self.code_requests[which] = self.code_requests.get(which, 0) + 1
        if self.code_requests[which] > self.settings.rate_limit_email_per_hour:
            assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
            return
        assert response.status_code == 202, response.text
        self.signed_up.add(which)
        verified = self.client.post("/auth/verify-code", json={"email": typed, "code": self.mailbox.last_code(which)})
        assert verified.status_code == 200, verified.text
        self.client.cookies.clear()
        self.tokens[which] = auth(verified.json()["access_token"])

    @precondition(lambda self: self.tokens)
    @rule(data=st.data(), plan=st.sampled_from(range(len(PLANS))))
    def check_out(self, data, plan):
        email = data.draw(st.sampled_from(sorted(self.tokens)))
        response = self.client.post("/orders", json={"plan_id": self.plan_ids[plan]}, headers=self.tokens[email])
        if self.free_profiles[plan] == 0:
            # No stock, no sale (ALLOW_BACKORDERS is off): refused and nothing recorded.
            assert response.status_code == 409 and "out of stock" in response.json()["detail"], response.text
            return
        assert response.status_code == 201, response.text
        body = response.json()
        _, price, currency, _ = PLANS[plan]
        assert (body["status"], body["amount_minor_units"], body["currency"]) == ("pending", price, currency)
        self.orders.append(ModelOrder(body["id"], email, plan))

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), pays_at_once=st.booleans())
    def payment_intent(self, data, pays_at_once):
        order = data.draw(st.sampled_from(self.orders))
        self.settings.payment_sandbox_auto_confirm = pays_at_once
        response = self.client.post(f"/orders/{order.id}/payment-intent", headers=self.tokens[order.email])
        if order.status in ("paid", "activated"):
            assert response.status_code == 409, response.text
            return
        assert response.status_code == 200, response.text
        intent = response.json()["payment_intent_id"]
        assert order.intent in (None, intent), "asking again must return the same intent"
        order.intent = intent
        if pays_at_once:
            assert response.json()["status"] == "succeeded"
            self._move(order, "paid")

    @precondition(lambda self: any(o.intent for o in self.orders))
    @rule(data=st.data(), succeeded=st.booleans(), wrong_amount=st.booleans())
    def webhook(self, data, succeeded, wrong_amount):
        with_intent = [o for o in self.orders if o.intent]
        unpaid = [o for o in with_intent if o.status in ("pending", "payment_failed")]
        # Half the time an unpaid order, so failures and successes interleave before payment too.
        order = data.draw(st.sampled_from(unpaid if unpaid and data.draw(st.booleans()) else with_intent))
        _, price, currency, _ = PLANS[order.plan]
        event_type = "payment_intent.succeeded" if succeeded else "payment_intent.payment_failed"
        amount = price + 1 if wrong_amount else price
        payload = stripe_event(f"evt_{next(_serial)}", event_type, order.intent, amount, currency.lower())
        response = post_webhook(self.client, payload)
        assert response.status_code == 200, response.text
        if not succeeded:
            expected = "payment_failed" if order.status == "pending" else "no_change"
        elif wrong_amount:
            expected = "amount_mismatch"
        else:
            expected = "paid" if order.status in ("pending", "payment_failed") else "no_change"
        assert response.json()["outcome"] == expected, (order, event_type, wrong_amount)
        self.seen[f"{event_type.rsplit('.', 1)[1]} webhook on a {order.status} order"] += 1
        if expected in ("paid", "payment_failed"):
            self._move(order, expected)
        self.sent_events.append((payload, expected))

    @precondition(lambda self: self.sent_events)
    @rule(data=st.data())
    def redeliver_webhook(self, data):
        payload, _ = data.draw(st.sampled_from(self.sent_events))
        response = post_webhook(self.client, payload)
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "duplicate"
        self.seen["redelivered webhook"] += 1

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def activate(self, data):
        # Mostly paid orders (the interesting ones), sometimes any order.
        paid = [o for o in self.orders if o.status in ("paid", "activated")]
        order = data.draw(st.sampled_from(paid if paid and data.draw(st.booleans()) else self.orders))
        response = self.client.post(f"/orders/{order.id}/activate", headers=self.tokens[order.email])
        if order.status == "activated":
            assert response.status_code == 200 and response.json()["iccid"] == order.iccid, response.text
        elif order.status != "paid":
            assert response.status_code == 409, response.text
        elif self.free_profiles[order.plan] == 0:
            assert response.status_code == 409 and "No eSIM profile left" in response.json()["detail"], response.text
            self.seen["activation refused: inventory exhausted"] += 1
            self.ran_out = True
        else:
            assert response.status_code == 200, response.text
            order.iccid = response.json()["iccid"]
            self.free_profiles[order.plan] -= 1
            self._move(order, "activated")

    @precondition(lambda self: self.ran_out)  # restock only once a refusal was seen, or it never runs out
    @rule(plan=st.sampled_from(range(len(PLANS))))
    def restock(self, plan):
        self._restock(plan, 1)

    # ---- invariants --------------------------------------------------------------------

    def _query(self, sql: str) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]

    @invariant()
    def orders_are_where_the_model_says(self):
        actual = dict(self._query("SELECT id, status FROM orders"))
        assert actual == {o.id: o.status for o in self.orders}
        for order in self.orders:
            for before, after in itertools.pairwise(order.history):
                assert (before, after) in ALLOWED, order
        assigned = dict(self._query("SELECT order_id, iccid FROM esim_profiles WHERE order_id IS NOT NULL"))
        assert assigned == {o.id: o.iccid for o in self.orders if o.status == "activated"}

    @invariant()
    def one_event_per_fact(self):
        assert self._query(
            # payment_failed is one per failed attempt (several per order); its dedupe key holds the attempt id.
            "SELECT event_type, order_id, COUNT(*) FROM analytics_events WHERE order_id IS NOT NULL "
            "AND event_type NOT IN ('payment_failed', 'payment_refunded') "
            "GROUP BY event_type, order_id HAVING COUNT(*) > 1"
        ) == []
        assert self._query(
            "SELECT user_id, COUNT(*) FROM analytics_events WHERE event_type = 'user_signup' GROUP BY user_id HAVING COUNT(*) > 1"
        ) == []
        assert self._query(
            "SELECT e.order_id, o.status FROM analytics_events e JOIN orders o ON o.id = e.order_id "
            "WHERE e.event_type = 'payment_succeeded' AND o.status NOT IN ('paid', 'activated')"
        ) == []

    @invariant()
    def reports_equal_a_recount_of_the_model(self):
        paid = [o for o in self.orders if o.status in ("paid", "activated")]
        counts = {
            "user_signup": len(self.signed_up),
            "checkout_started": len(self.orders),
            "payment_succeeded": len(paid),
            "esim_activated": sum(o.status == "activated" for o in self.orders),
        }
        revenue: dict[str, int] = {}
        for order in paid:
            _, price, currency, _ = PLANS[order.plan]
            revenue[currency] = revenue.get(currency, 0) + price
        today = dt.datetime.now(dt.UTC).date()
        # One day either side: a step that runs across midnight UTC still falls in range.
        window = {"start_date": str(today - dt.timedelta(days=1)), "end_date": str(today + dt.timedelta(days=1))}
        overview = self.client.get("/admin/analytics/overview", params=window, headers=self.admin).json()
        assert overview["counts"] == counts
        assert overview["revenue"] == dict(sorted(revenue.items()))
        users_with = {
            "user_signup": self.signed_up,
            "checkout_started": {o.email for o in self.orders},
            "payment_succeeded": {o.email for o in paid},
            "esim_activated": {o.email for o in self.orders if o.status == "activated"},
        }
        assert overview["unique_users"] == {k: len(v) for k, v in users_with.items()}
        series = self.client.get("/admin/analytics/timeseries", params=window, headers=self.admin).json()
        assert {t: sum(b["counts"][t] for b in series["buckets"]) for t in counts} == counts
        series_revenue: dict[str, int] = {}
        for bucket in series["buckets"]:
            for currency, amount in bucket["revenue"].items():
                series_revenue[currency] = series_revenue.get(currency, 0) + amount
        assert {c: a for c, a in series_revenue.items() if a} == revenue


def test_the_shop_keeps_its_invariants_under_random_operations(engine, settings, monkeypatch):
    monkeypatch.setattr(settings, "payment_sandbox_auto_confirm", False)  # restored after the run
    ShopMachine.engine, ShopMachine.settings = engine, settings
    run_state_machine_as_test(
        ShopMachine,
        settings=hypothesis.settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        ),
    )
    reached = {
        "failed after nothing": ["payment_failed webhook on a pending order"],
        "succeeded after failed": ["succeeded webhook on a payment_failed order"],
        "failed after succeeded": ["payment_failed webhook on a paid order", "payment_failed webhook on a activated order"],
        "succeeded again": ["succeeded webhook on a paid order", "succeeded webhook on a activated order"],
        "redelivery": ["redelivered webhook"],
        "inventory exhausted": ["activation refused: inventory exhausted"],
    }
    for case, keys in reached.items():
        assert any(ShopMachine.seen[k] for k in keys), f"the run never reached: {case} ({dict(ShopMachine.seen)})"
