"""Events live and die with their business action: a failure after `record_event` leaves neither.

These run with real commits (`live_client`) and read the outcome from a fresh connection.
"""

import datetime as dt

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from app.db import Base
from app.models.analytics import AnalyticsDailyTotal, AnalyticsEvent, EventType
from app.services import auth as auth_service
from app.services import orders as order_service
from app.services.analytics import record_event
from tests.factories import create_order, create_plan, create_user
from tests.helpers import auth, login, post_webhook, stripe_event, valid_iccid


def at_noon(day: int) -> dt.datetime:
    return dt.datetime(2025, 6, day, 12, tzinfo=dt.UTC)


class Boom(Exception):
    """The failure injected after the event was written."""


def database_state(engine) -> dict[str, list[str]]:
    """Every row of every table, as seen by a brand-new connection."""
    with engine.connect() as connection:
        return {table.name: sorted(repr(tuple(row)) for row in connection.execute(select(table))) for table in Base.metadata.sorted_tables}


def events_of(engine, event_type: EventType) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(AnalyticsEvent).where(AnalyticsEvent.event_type == event_type))


class Shop:
    """An admin, a plan with eSIM profiles and a logged-in customer, all committed."""

    def __init__(self, client, mailbox, settings):
        self.client, self.settings = client, settings
        admin = auth(login(client, mailbox, "admin@shop.test")["access_token"])
        plan = client.post(
            "/admin/plans",
            json={"name": "Europe 5 GB", "region": "Europe", "data_mb": 5120, "validity_days": 30, "price_minor_units": 1999, "currency": "USD"},
            headers=admin,
        ).json()
        self.plan_id = plan["id"]
        profiles = [{"iccid": valid_iccid(f"89440000000000077{i}"), "activation_code": f"LPA:1$x${i}"} for i in range(2)]
        assert client.post(f"/admin/plans/{self.plan_id}/esim-profiles", json={"profiles": profiles}, headers=admin).status_code == 201
        self.customer = auth(login(client, mailbox, "customer@shop.test")["access_token"])

    def order(self) -> int:
        response = self.client.post("/orders", json={"plan_id": self.plan_id}, headers=self.customer)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def intent(self, order_id: int) -> dict:
        return self.client.post(f"/orders/{order_id}/payment-intent", headers=self.customer).json()

    def paid_order(self, monkeypatch) -> int:
        order_id = self.order()
        with monkeypatch.context() as patch:
            patch.setattr(self.settings, "payment_sandbox_auto_confirm", True)
            assert self.intent(order_id)["status"] == "succeeded"
        return order_id


# Each flow: the service module and function its endpoint calls, the event it records,
# and a set-up that commits what the flow needs and returns the request to make.
def signup_flow(shop, monkeypatch):
    return lambda: shop.client.post("/auth/request-code", json={"email": "new.customer@shop.test"})


def checkout_flow(shop, monkeypatch):
    return lambda: shop.client.post("/orders", json={"plan_id": shop.plan_id}, headers=shop.customer)


def intent_flow(shop, monkeypatch):
    order_id = shop.order()
    monkeypatch.setattr(shop.settings, "payment_sandbox_auto_confirm", True)
    return lambda: shop.client.post(f"/orders/{order_id}/payment-intent", headers=shop.customer)


def webhook_flow(shop, monkeypatch):
    order_id = shop.order()
    intent_id = shop.intent(order_id)["payment_intent_id"]
    payload = stripe_event("evt_same_tx", "payment_intent.succeeded", intent_id, 1999, "usd")
    return lambda: post_webhook(shop.client, payload)


def activation_flow(shop, monkeypatch):
    order_id = shop.paid_order(monkeypatch)
    return lambda: shop.client.post(f"/orders/{order_id}/activate", headers=shop.customer)


FLOWS = {
    "signup": (auth_service, "request_code", EventType.USER_SIGNUP, signup_flow),
    "checkout": (order_service, "create_order", EventType.CHECKOUT_STARTED, checkout_flow),
    "payment_intent": (order_service, "ensure_payment_intent", EventType.PAYMENT_SUCCEEDED, intent_flow),
    "webhook": (order_service, "handle_webhook_event", EventType.PAYMENT_SUCCEEDED, webhook_flow),
    "activation": (order_service, "activate_esim", EventType.ESIM_ACTIVATED, activation_flow),
}


@pytest.fixture
def shop(live_client, mailbox, settings):
    return Shop(live_client, mailbox, settings)


@pytest.mark.parametrize("flow", FLOWS)
def test_failure_after_record_event_leaves_neither_rows_nor_event(shop, engine, monkeypatch, flow):
    module, name, event_type, prepare = FLOWS[flow]
    act = prepare(shop, monkeypatch)
    before, events_before = database_state(engine), events_of(engine, event_type)
    real_service = getattr(module, name)
    written = []

    def service_then_failure(session, *args, **kwargs):
        real_service(session, *args, **kwargs)
        session.flush()  # the event row and its rollup increments are in the database now
        written.append(session.scalar(select(func.count()).select_from(AnalyticsEvent).where(AnalyticsEvent.event_type == event_type)))
        raise Boom(flow)

    with monkeypatch.context() as patch:
        patch.setattr(module, name, service_then_failure)
        with pytest.raises(Boom):
            act()
    assert written == [events_before + 1]  # the failing transaction did hold the event
    assert database_state(engine) == before

    # Nothing half-done remains in the way: the same request now succeeds and counts once.
    assert act().status_code < 300
    assert events_of(engine, event_type) == events_before + 1


@pytest.mark.parametrize("flow", FLOWS)
def test_failing_commit_leaves_neither_rows_nor_event(shop, engine, monkeypatch, flow):
    _, _, event_type, prepare = FLOWS[flow]
    act = prepare(shop, monkeypatch)
    before, events_before = database_state(engine), events_of(engine, event_type)

    def refuse_commit(connection):
        raise Boom(f"commit of {flow} refused")

    event.listen(engine, "commit", refuse_commit)
    try:
        with pytest.raises(Boom):
            act()
    finally:
        event.remove(engine, "commit", refuse_commit)
    assert database_state(engine) == before
    assert act().status_code < 300
    assert events_of(engine, event_type) == events_before + 1


@pytest.mark.parametrize("event_type", list(EventType))
def test_the_database_refuses_a_second_event_for_the_same_fact(db, event_type):
    user = create_user(db, signup=False)
    order = create_order(db, user=user, plan=create_plan(db))
    fact = {"user_id": user.id} if event_type is EventType.USER_SIGNUP else {"user_id": user.id, "order_id": order.id}
    if event_type in (EventType.PAYMENT_FAILED, EventType.PAYMENT_REFUNDED):
        fact["fact_id"] = "re_or_ch_1"  # one per refund / failed attempt, not per order
    record_event(db, event_type, **fact, amount_minor_units=1999, currency="USD", occurred_at=at_noon(1))
    db.flush()
    rollup = select(func.sum(AnalyticsDailyTotal.event_count)).where(AnalyticsDailyTotal.event_type == event_type)
    assert db.scalar(rollup) == 1
    with pytest.raises(IntegrityError):
        with db.begin_nested():
            # Another moment and amount, same fact: still refused by the unique key.
            record_event(db, event_type, **fact, amount_minor_units=1, currency="EUR", occurred_at=at_noon(2))
    assert db.scalar(select(func.count()).select_from(AnalyticsEvent).where(AnalyticsEvent.event_type == event_type)) == 1
    assert db.scalar(rollup) == 1  # the refused event's rollup increment went with it
