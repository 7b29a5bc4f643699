"""The funnel and retention endpoints: the live login flow, bad input, retention by hand."""

import datetime as dt
import secrets

import pytest

from app.db import utc_now
from app.models.user import AuthSession
from app.services.auth import token_hash
from app.services.funnel_rebuild import rebuild_funnel
from app.services.retention import retention
from tests.factories import create_user
from tests.funnel_helpers import History, at
from tests.helpers import auth, login


@pytest.fixture
def admin_headers(db):
    admin = create_user(db, email="funnel-admin@shop.test", is_admin=True, signup=False)
    token = secrets.token_urlsafe(32)
    db.add(AuthSession(user_id=admin.id, token_hash=token_hash(token), created_at=at("2025-01-01 00:00"), expires_at=at("2999-01-01 00:00")))
    db.flush()
    return auth(token)


def test_verified_step_and_internal_users_through_the_login_flow(client, mailbox, admin_headers):
    login(client, mailbox, "traveller@shop.test")
    assert client.post("/auth/request-code", json={"email": "typo@shop.tst"}).status_code == 202
    login(client, mailbox, "admin@shop.test")  # ADMIN_EMAILS: internal
    today = utc_now().date().isoformat()
    url = f"/admin/analytics/funnel?start_date={today}&end_date={today}&steps=verified"
    body = client.get(url, headers=admin_headers).json()
    assert body["steps"] == ["user_signup", "verified", "checkout_started", "payment_succeeded", "esim_activated"]
    assert [s["count"] for s in body["funnel"]] == [3, 2, 0, 0, 0]
    assert body["funnel"][1]["dropped"] + body["funnel"][1]["in_progress"] == 1
    body = client.get(url + "&exclude_internal=true", headers=admin_headers).json()
    assert [s["count"] for s in body["funnel"]] == [2, 1, 0, 0, 0]
    assert body["exclude_internal"] is True and body["tz"] == "UTC" and body["window_days"] == 14


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("breakdown=country", "breakdown"),
        ("window_days=0", "window_days"),
        ("window_days=91", "window_days"),
        ("by=session", "by"),
        ("steps=paid", "steps"),
        ("tz=Mars/Olympus", "tz"),
        ("tz=../../etc/passwd", "tz"),
        ("start_date=2026-11-30&end_date=2026-11-01", "start_date"),
    ],
)
def test_funnel_bad_input_is_422_naming_the_field(client, admin_headers, query, field):
    response = client.get(f"/admin/analytics/funnel?{query}", headers=admin_headers)
    assert response.status_code == 422
    assert field in str(response.json()["detail"])


@pytest.mark.parametrize(("query", "field"), [("interval=year", "interval"), ("tz=Nowhere", "tz"), ("start_date=x", "start_date")])
def test_retention_bad_input_is_422_naming_the_field(client, admin_headers, query, field):
    response = client.get(f"/admin/analytics/retention?{query}", headers=admin_headers)
    assert response.status_code == 422
    assert field in str(response.json()["detail"])


def test_funnel_needs_an_admin(client, mailbox):
    assert client.get("/admin/analytics/funnel").status_code == 401
    token = login(client, mailbox, "plain@shop.test")["access_token"]
    assert client.get("/admin/analytics/funnel", headers=auth(token)).status_code == 403


@pytest.fixture
def repeat_buyers(db):
    """U1 pays Mon 2 Nov, Tue 10 Nov, Tue 24 Nov; U2 pays twice in the week of 2 Nov; U3 first pays 9 Nov, again 16 Nov."""
    h = History(db)
    u1, u2, u3 = (h.user("2026-10-01 10:00") for _ in range(3))
    for when in ("2026-11-02 08:00", "2026-11-10 08:00", "2026-11-24 08:00"):
        h.order(u1, when, when)
    for when in ("2026-11-04 08:00", "2026-11-05 08:00"):
        h.order(u2, when, when)
    for when in ("2026-11-09 23:30", "2026-11-16 08:00"):
        h.order(u3, when, when)
    return h, (u1, u2, u3)


def _cohorts(report):
    return [(c.cohort_start, c.size, c.retained) for c in report.cohorts]


def test_weekly_retention_by_hand(db, repeat_buyers):
    report = retention(db, interval="week", start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 22), tz="UTC")
    assert _cohorts(report) == [("2026-11-02", 2, [1, 0]), ("2026-11-09", 1, [1]), ("2026-11-16", 0, [])]
    assert report.cohorts[0].rates == [0.5, 0.0]
    assert report.source == "rollup"
    # Berlin: U3's 9 Nov 23:30Z payment is on Tuesday 10 Nov there, same week; answered from the events.
    berlin = retention(db, interval="week", start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 29), tz="Europe/Berlin")
    assert _cohorts(berlin) == [("2026-11-02", 2, [1, 0, 1]), ("2026-11-09", 1, [1, 0]), ("2026-11-16", 0, [0]), ("2026-11-23", 0, [])]
    assert berlin.source == "events"
    monthly = retention(db, interval="month", start=dt.date(2026, 11, 1), end=dt.date(2026, 12, 31), tz="UTC")
    assert _cohorts(monthly) == [("2026-11-01", 3, [0]), ("2026-12-01", 0, [])]


def test_retention_after_a_late_earlier_payment_and_rebuild(db, repeat_buyers):
    h, (u1, u2, u3) = repeat_buyers
    h.order(u3, "2026-10-20 08:00", "2026-10-20 08:00")  # recorded late: U3's first payment moves to October
    report = retention(db, interval="week", start=dt.date(2026, 10, 19), end=dt.date(2026, 11, 22), tz="UTC")
    expected = [
        ("2026-10-19", 1, [0, 0, 1, 1]),
        ("2026-10-26", 0, [0, 0, 0]),
        ("2026-11-02", 2, [1, 0]),
        ("2026-11-09", 0, [0]),
        ("2026-11-16", 0, []),
    ]
    assert _cohorts(report) == expected
    rebuild_funnel(db)
    assert _cohorts(retention(db, interval="week", start=dt.date(2026, 10, 19), end=dt.date(2026, 11, 22), tz="UTC")) == expected


def test_retention_excludes_internal_users(db, repeat_buyers):
    _, (u1, u2, u3) = repeat_buyers
    report = retention(
        db, interval="week", start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 22), tz="UTC",
        internal_user_ids=frozenset({u1.id}), exclude_internal=True,
    )
    assert _cohorts(report) == [("2026-11-02", 1, [0, 0]), ("2026-11-09", 1, [1]), ("2026-11-16", 0, [])]


def test_retention_endpoint(client, admin_headers, repeat_buyers):
    response = client.get("/admin/analytics/retention?interval=week&start_date=2026-11-02&end_date=2026-11-22", headers=admin_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(c["cohort_start"], c["size"], c["retained"]) for c in body["cohorts"]] == [
        ("2026-11-02", 2, [1, 0]), ("2026-11-09", 1, [1]), ("2026-11-16", 0, []),
    ]
