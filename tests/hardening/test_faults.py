"""A database failure at any step of a flow leaves the database as it was; a retry then
succeeds and counts once. A deadlock on the first attempt is retried by the app itself.

Each flow's request is first run once cleanly to learn which SQL statements it runs; then,
for every statement in turn and for the commit, a fresh instance of the request fails
right there. That covers the steps before `record_event`, the event insert and rollup
upserts themselves, everything after them, and the commit. Requests run on real commits
(`live_client`) and the database is compared from a separate engine.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from tests.hardening.conftest import Shop, build_shop
from tests.hardening.faults import FaultInjector, Snapshot, deadlock, inject
from tests.helpers import post_webhook, sign, stripe_event

_serial = itertools.count(1)


@dataclass
class Flow:
    name: str
    prepare: Callable  # (client, shop, mailbox) -> a zero-argument function sending the request
    status: int
    event: str | None
    auto_confirm: bool = False


def new_order(client, shop: Shop) -> int:
    response = client.post("/orders", json={"plan_id": shop.plan_id}, headers=shop.customer_headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def new_intent(client, shop: Shop, order_id: int) -> str:
    response = client.post(f"/orders/{order_id}/payment-intent", headers=shop.customer_headers)
    assert response.status_code == 200, response.text
    return response.json()["payment_intent_id"]


def prepare_signup(client, shop, mailbox):
    email = f"fault-signup-{next(_serial)}@shop.test"
    return lambda: client.post("/auth/request-code", json={"email": email})


def prepare_login(client, shop, mailbox):
    email = f"fault-login-{next(_serial)}@shop.test"
    assert client.post("/auth/request-code", json={"email": email}).status_code == 202
    code = mailbox.last_code(email)
    return lambda: client.post("/auth/verify-code", json={"email": email, "code": code})


def prepare_checkout(client, shop, mailbox):
    return lambda: client.post("/orders", json={"plan_id": shop.plan_id}, headers=shop.customer_headers)


def prepare_intent_paid_at_once(client, shop, mailbox):
    order_id = new_order(client, shop)
    return lambda: client.post(f"/orders/{order_id}/payment-intent", headers=shop.customer_headers)


def prepare_webhook(client, shop, mailbox):
    intent_id = new_intent(client, shop, new_order(client, shop))
    payload = stripe_event(f"evt_fault_{next(_serial)}", "payment_intent.succeeded", intent_id, 1999, "usd")
    signature = sign(payload)
    return lambda: post_webhook(client, payload, signature)


def prepare_activation(client, shop, mailbox):
    order_id = new_order(client, shop)
    intent_id = new_intent(client, shop, order_id)
    payload = stripe_event(f"evt_fault_{next(_serial)}", "payment_intent.succeeded", intent_id, 1999, "usd")
    assert post_webhook(client, payload).json()["outcome"] == "paid"
    return lambda: client.post(f"/orders/{order_id}/activate", headers=shop.customer_headers)


FLOWS = [
    Flow("signup", prepare_signup, 202, "user_signup"),
    Flow("login", prepare_login, 200, None),
    Flow("checkout", prepare_checkout, 201, "checkout_started"),
    Flow("intent_paid_at_once", prepare_intent_paid_at_once, 200, "payment_succeeded", auto_confirm=True),
    Flow("webhook", prepare_webhook, 200, "payment_succeeded"),
    Flow("activation", prepare_activation, 200, "esim_activated"),
]


def event_counts(snapshot: Snapshot) -> dict[str, int]:
    with snapshot.engine.connect() as conn:
        rows = conn.execute(text("SELECT event_type, COUNT(*) FROM analytics_events GROUP BY event_type")).all()
    return {event_type: count for event_type, count in rows}


def expect_one_more(before: dict[str, int], event: str | None) -> dict[str, int]:
    after = dict(before)
    if event:
        after[event] = after.get(event, 0) + 1
    return after


@pytest.fixture
def faulty_shop(live_client, engine, settings, monkeypatch):
    snapshot = Snapshot(engine.url.render_as_string(hide_password=False))
    yield live_client, build_shop(live_client, profiles=60), snapshot
    snapshot.close()


def statement_points(client, shop, mailbox, engine, flow: Flow) -> list[tuple[str, int | None]]:
    """Run the flow once cleanly; every statement it ran, and its commit, is a point to fail at.

    A warm-up run comes first: the customer's first checkout or payment also writes its
    funnel rows (analytics_funnel_steps), later ones only re-read them, and the runs
    below are later ones.
    """
    assert flow.prepare(client, shop, mailbox)().status_code == flow.status
    send = flow.prepare(client, shop, mailbox)
    with inject(engine, FaultInjector()) as probe:
        response = send()
    assert response.status_code == flow.status, response.text
    assert probe.statements, "the request ran no SQL through the app's engine"
    return [("statement", n) for n in range(1, len(probe.statements) + 1)] + [("commit", None)]


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_a_failure_at_any_step_changes_nothing_and_a_retry_counts_once(faulty_shop, engine, mailbox, settings, monkeypatch, flow):
    client, shop, snapshot = faulty_shop
    monkeypatch.setattr(settings, "payment_sandbox_auto_confirm", flow.auto_confirm)
    for kind, n in statement_points(client, shop, mailbox, engine, flow):
        send = flow.prepare(client, shop, mailbox)
        mails_before = len(mailbox.messages())
        before, counts_before = snapshot.take(), event_counts(snapshot)
        injector = FaultInjector(fail_at=n, fail_commit=kind == "commit")
        with inject(engine, injector):
            failed = send()
        where = f"{flow.name}: failure at {kind} {n} ({injector.injected[:1]})"
        assert injector.injected, f"{flow.name}: {kind} {n} was never reached"
        assert failed.status_code == 503, f"{where}: {failed.status_code} {failed.text}"
        assert failed.headers["Retry-After"] == "1"
        assert failed.json() == {"detail": "The database is busy or unavailable; please try again."}
        assert snapshot.take() == before, f"{where} left rows behind"
        assert len(mailbox.messages()) == mails_before, f"{where} sent an email for work that was rolled back"

        retried = send()
        assert retried.status_code == flow.status, f"{where}, then retry: {retried.status_code} {retried.text}"
        assert event_counts(snapshot) == expect_one_more(counts_before, flow.event), where


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_a_deadlock_on_the_first_attempt_is_retried_and_counts_once(faulty_shop, engine, mailbox, settings, monkeypatch, flow):
    client, shop, snapshot = faulty_shop
    monkeypatch.setattr(settings, "payment_sandbox_auto_confirm", flow.auto_confirm)
    for kind, n in statement_points(client, shop, mailbox, engine, flow):
        send = flow.prepare(client, shop, mailbox)
        counts_before = event_counts(snapshot)
        injector = FaultInjector(make_error=deadlock, fail_at=n, fail_commit=kind == "commit")
        with inject(engine, injector):
            response = send()
        where = f"{flow.name}: deadlock at {kind} {n} ({injector.injected[:1]})"
        assert len(injector.injected) == 1, where
        assert response.status_code == flow.status, f"{where}: {response.status_code} {response.text}"
        assert event_counts(snapshot) == expect_one_more(counts_before, flow.event), where


def test_deadlocks_on_every_attempt_end_in_503_and_change_nothing(faulty_shop, engine, mailbox):
    client, shop, snapshot = faulty_shop
    send = prepare_checkout(client, shop, mailbox)
    before = snapshot.take()
    injector = FaultInjector(make_error=deadlock, fail_commit=True, times=10)
    with inject(engine, injector):
        response = send()
    assert len(injector.injected) == 3  # BufferedRetryMiddleware's attempts
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert snapshot.take() == before
