"""Races on a real MariaDB/PostgreSQL server: one connection per thread, real commits."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app.db import get_sessionmaker
from app.models.analytics import AnalyticsDailyTotal, AnalyticsEvent
from app.models.esim import EsimProfile
from app.models.order import Order, OrderStatus
from app.models.user import AuthSession, User
from tests import factories
from tests.helpers import auth, login, post_webhook, stripe_event

pytestmark = pytest.mark.server_db


def race(count: int, action):
    """Run `action(i)` in `count` threads released together; returns the results in order."""
    barrier = threading.Barrier(count)

    def run(index):
        barrier.wait()
        return action(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def committed(build):
    with get_sessionmaker().begin() as session:
        return build(session)


def count_events(event_type, order_id=None):
    with get_sessionmaker()() as session:
        query = select(func.count()).select_from(AnalyticsEvent).where(AnalyticsEvent.event_type == event_type)
        if order_id is not None:
            query = query.where(AnalyticsEvent.order_id == order_id)
        return session.scalar(query)


def rollup_count(event_type):
    with get_sessionmaker()() as session:
        return session.scalar(select(func.coalesce(func.sum(AnalyticsDailyTotal.event_count), 0)).where(AnalyticsDailyTotal.event_type == event_type))


@pytest.fixture
def customer(live_client, mailbox):
    return auth(login(live_client, mailbox, "racer@shop.test")["access_token"])


def make_plan(profiles: int):
    def build(session):
        plan = factories.create_plan(session, price_minor_units=1500, currency="USD")
        factories.create_profiles(session, plan=plan, count=profiles)
        return plan.id

    return committed(build)


def test_webhook_storm_and_intent_path_pay_once(live_client, customer, settings, monkeypatch):
    plan_id = make_plan(1)
    order = live_client.post("/orders", json={"plan_id": plan_id}, headers=customer).json()
    intent_id = live_client.post(f"/orders/{order['id']}/payment-intent", headers=customer).json()["payment_intent_id"]
    # From now on the provider reports the intent as succeeded, so the intent path pays too.
    monkeypatch.setattr(settings, "payment_sandbox_auto_confirm", True)
    payload = stripe_event("evt_storm", "payment_intent.succeeded", intent_id, 1500, "usd")

    def deliver(index):
        if index == 20:
            return live_client.post(f"/orders/{order['id']}/payment-intent", headers=customer).status_code
        return post_webhook(live_client, payload).json()["outcome"]

    results = race(21, deliver)
    webhook_outcomes = sorted(results[:20])
    assert set(webhook_outcomes) <= {"paid", "no_change", "duplicate"}
    assert webhook_outcomes.count("duplicate") == 19
    assert results[20] in (200, 409)  # paid it itself, or found it already paid
    assert live_client.get(f"/orders/{order['id']}", headers=customer).json()["status"] == "paid"
    assert count_events("payment_succeeded", order["id"]) == 1
    assert rollup_count("payment_succeeded") == 1


def test_ten_simultaneous_activations_get_one_profile(live_client, customer, settings, monkeypatch):
    plan_id = make_plan(3)
    monkeypatch.setattr(settings, "payment_sandbox_auto_confirm", True)
    order = live_client.post("/orders", json={"plan_id": plan_id}, headers=customer).json()
    assert live_client.post(f"/orders/{order['id']}/payment-intent", headers=customer).json()["status"] == "succeeded"
    responses = race(10, lambda i: live_client.post(f"/orders/{order['id']}/activate", headers=customer))
    assert [r.status_code for r in responses] == [200] * 10
    assert len({r.json()["iccid"] for r in responses}) == 1
    with get_sessionmaker()() as session:
        assert session.scalar(select(func.count()).select_from(EsimProfile).where(EsimProfile.order_id.is_not(None))) == 1
    assert count_events("esim_activated") == 1


def test_eight_orders_race_for_five_profiles(live_client, customer, settings, monkeypatch):
    plan_id = make_plan(5)
    monkeypatch.setattr(settings, "payment_sandbox_auto_confirm", True)
    orders = []
    for _ in range(8):
        order = live_client.post("/orders", json={"plan_id": plan_id}, headers=customer).json()
        live_client.post(f"/orders/{order['id']}/payment-intent", headers=customer)
        orders.append(order)
    responses = race(8, lambda i: live_client.post(f"/orders/{orders[i]['id']}/activate", headers=customer))
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 409]
    assert len(ok) == 5 and len(refused) == 3
    assert len({r.json()["iccid"] for r in ok}) == 5
    assert all("No eSIM profile left" in r.json()["detail"] for r in refused)
    with get_sessionmaker()() as session:
        statuses = sorted(session.scalars(select(Order.status)).all())
    assert statuses == sorted([OrderStatus.ACTIVATED] * 5 + [OrderStatus.PAID] * 3)
    assert count_events("esim_activated") == 5


def test_same_code_verified_twice_at_once_opens_one_session(live_client, mailbox):
    for round_number in range(5):
        email = f"twice{round_number}@shop.test"
        assert live_client.post("/auth/request-code", json={"email": email}).status_code == 202
        code = mailbox.last_code(email)
        statuses = race(2, lambda i: live_client.post("/auth/verify-code", json={"email": email, "code": code}).status_code)
        assert sorted(statuses) == [200, 400]
        with get_sessionmaker()() as session:
            user_id = session.scalar(select(User.id).where(User.email == email))
            assert session.scalar(select(func.count()).select_from(AuthSession).where(AuthSession.user_id == user_id)) == 1


def test_simultaneous_first_requests_create_one_user_and_one_signup(live_client):
    statuses = race(6, lambda i: live_client.post("/auth/request-code", json={"email": "burst@shop.test"}).status_code)
    assert statuses.count(202) == 5 and statuses.count(429) <= 1
    with get_sessionmaker()() as session:
        assert session.scalar(select(func.count()).select_from(User).where(User.email == "burst@shop.test")) == 1
    assert count_events("user_signup") == 1
