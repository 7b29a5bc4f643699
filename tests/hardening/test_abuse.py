"""What an attacker or a broken client can try: guessing codes, flooding, probing for
accounts, fishing secrets out of logs, forging webhooks, huge or broken bodies,
cross-site requests. Each answer is a clear 4xx and nothing changes."""

import logging
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.api.deps import SESSION_COOKIE
from app.main import app
from app.models.analytics import AnalyticsEvent
from app.models.order import Order, PaymentWebhookEvent
from app.models.user import LoginCode, User
from tests.hardening.conftest import build_shop
from tests.helpers import auth, login, post_webhook, sign, stripe_event

ONE_MB = 1024 * 1024


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def from_ip(client: TestClient, ip: str) -> TestClient:
    """The same app and transaction (the `client` fixture's override), seen from another address."""
    return TestClient(app, client=(ip, 40000))


# ---- one-time codes ----------------------------------------------------------------------


def test_brute_force_stops_after_five_wrong_codes_even_for_the_right_one(client, db, mailbox, settings):
    client.post("/auth/request-code", json={"email": "victim@shop.test"})
    code = mailbox.last_code("victim@shop.test")
    wrong = [f"{(int(code) + i) % 10**6:06d}" for i in range(1, settings.login_code_max_attempts + 1)]
    for guess in wrong:
        response = client.post("/auth/verify-code", json={"email": "victim@shop.test", "code": guess})
        assert response.status_code == 400 and response.json() == {"detail": "Invalid or expired code"}
    sixth = client.post("/auth/verify-code", json={"email": "victim@shop.test", "code": code})
    assert sixth.status_code == 429
    assert sixth.json() == {"detail": "Too many attempts; request a new code"}
    assert int(sixth.headers["Retry-After"]) > 0
    assert "set-cookie" not in sixth.headers and "access_token" not in sixth.text
    assert db.scalar(select(LoginCode.attempts)) == settings.login_code_max_attempts


def test_the_email_limit_holds_whatever_ip_the_requests_come_from(client, db, settings):
    statuses = [
        from_ip(client, f"198.51.100.{i}").post("/auth/request-code", json={"email": "flooded@shop.test"}).status_code
        for i in range(settings.rate_limit_email_per_hour + 1)
    ]
    assert statuses == [202] * settings.rate_limit_email_per_hour + [429]


def test_the_ip_limit_answers_429_with_retry_after_and_creates_nobody(client, db, mailbox, settings, monkeypatch):
    monkeypatch.setattr(settings, "rate_limit_ip_per_hour", 3)
    attacker = from_ip(client, "203.0.113.9")
    for i in range(3):
        assert attacker.post("/auth/request-code", json={"email": f"bulk{i}@shop.test"}).status_code == 202
    users, mails = count(db, User), len(mailbox.messages())
    refused = attacker.post("/auth/request-code", json={"email": "bulk3@shop.test"})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 3601
    assert refused.json()["detail"].startswith("Too many requests; try again in ")
    assert count(db, User) == users and len(mailbox.messages()) == mails
    # Someone else is not punished for the attacker's flood.
    assert from_ip(client, "192.0.2.1").post("/auth/request-code", json={"email": "bulk3@shop.test"}).status_code == 202


def test_verify_attempts_are_limited_per_ip_too(client, settings, monkeypatch):
    monkeypatch.setattr(settings, "rate_limit_verify_ip_per_hour", 4)
    guesser = from_ip(client, "203.0.113.77")
    statuses = [
        guesser.post("/auth/verify-code", json={"email": f"spray{i}@shop.test", "code": "123456"}).status_code for i in range(5)
    ]
    assert statuses == [400, 400, 400, 400, 429]


def test_known_and_unknown_emails_get_byte_identical_answers(client, mailbox):
    login(client, mailbox, "known@shop.test")
    known = client.post("/auth/request-code", json={"email": "known@shop.test"})
    unknown = client.post("/auth/request-code", json={"email": "stranger@shop.test"})
    assert (known.status_code, known.content, dict(known.headers)) == (unknown.status_code, unknown.content, dict(unknown.headers))
    wrong_known = client.post("/auth/verify-code", json={"email": "known@shop.test", "code": "000000"})
    wrong_unknown = client.post("/auth/verify-code", json={"email": "nobody-at-all@shop.test", "code": "000000"})
    assert (wrong_known.status_code, wrong_known.content) == (wrong_unknown.status_code, wrong_unknown.content)


def test_codes_and_tokens_never_reach_the_logs(client, mailbox, caplog, capsys):
    caplog.set_level(logging.DEBUG)  # everything, SQLAlchemy's statements and parameters included
    client.post("/auth/request-code", json={"email": "quiet@shop.test"})
    code = mailbox.last_code("quiet@shop.test")
    client.post("/auth/verify-code", json={"email": "quiet@shop.test", "code": "999999" if code != "999999" else "000000"})
    # A malformed attempt must not echo the code back either.
    echoed = client.post("/auth/verify-code", json={"email": "quiet@shop.test", "code": code + "1234567"})
    assert echoed.status_code == 422 and code not in echoed.text
    token = client.post("/auth/verify-code", json={"email": "quiet@shop.test", "code": code}).json()["access_token"]
    client.get("/auth/me", headers=auth(token))
    client.post("/auth/logout", headers=auth(token))
    out, err = capsys.readouterr()
    assert caplog.records, "nothing was logged at all: the check would prove nothing"
    logged = [caplog.text, out, err] + [str(r.args) for r in caplog.records] + [r.getMessage() for r in caplog.records]
    for secret in (code, token):
        assert not any(secret in text for text in logged)


# ---- webhooks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_signature",
    [
        pytest.param(lambda p: sign(p, timestamp=int(time.time()) - 301), id="stale-5min-1s"),
        pytest.param(lambda p: sign(p, timestamp=int(time.time()) - 3600), id="stale-1h"),
        pytest.param(lambda p: sign(p, secret="whsec_guessed"), id="forged-other-secret"),
        pytest.param(lambda p: sign(p).replace("v1=", "v0="), id="wrong-scheme"),
        pytest.param(lambda p: sign(p + b" "), id="signature-of-other-bytes"),
        pytest.param(lambda p: sign(p).split(",")[1], id="no-timestamp"),
        pytest.param(lambda p: "", id="empty-header"),
    ],
)
def test_stale_or_forged_webhooks_change_nothing(live_client, engine, make_signature):
    shop = build_shop(live_client, profiles=1)
    order_id = live_client.post("/orders", json={"plan_id": shop.plan_id}, headers=shop.customer_headers).json()["id"]
    intent = live_client.post(f"/orders/{order_id}/payment-intent", headers=shop.customer_headers).json()["payment_intent_id"]
    payload = stripe_event("evt_forged", "payment_intent.succeeded", intent, 1999, "usd")
    with engine.connect() as conn:
        before = [conn.scalar(select(func.count()).select_from(m)) for m in (AnalyticsEvent, PaymentWebhookEvent)]
    response = post_webhook(live_client, payload, make_signature(payload))
    assert response.status_code == 400, response.text
    with engine.connect() as conn:
        assert [conn.scalar(select(func.count()).select_from(m)) for m in (AnalyticsEvent, PaymentWebhookEvent)] == before
        assert conn.scalar(select(Order.status).where(Order.id == order_id)) == "pending"
    # The same event, properly signed, is accepted: only the signature was wrong.
    assert post_webhook(live_client, payload).json()["outcome"] == "paid"


# ---- bodies --------------------------------------------------------------------------------

POSTS = ["/auth/request-code", "/auth/verify-code", "/orders", "/admin/plans", "/payments/webhook"]


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_one_megabyte_body_is_413(client, db, path, chunked):
    body = b'{"email": "' + b"a" * ONE_MB + b'"}'
    content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    response = client.post(path, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large"}
    assert count(db, User) == 0


@pytest.mark.parametrize("path", ["/auth/request-code", "/auth/verify-code", "/orders", "/admin/plans"])
@pytest.mark.parametrize("body", [b'{"email": ', b"\xff\xfe\x00", b"[1, 2", b"null", b""], ids=["cut", "not-utf8", "open-list", "null", "empty"])
def test_malformed_json_is_a_4xx(client, mailbox, db, path, body):
    token = login(client, mailbox, "admin@shop.test")["access_token"]
    users = count(db, User)
    response = client.post(path, content=body, headers={"Content-Type": "application/json", **auth(token)})
    assert response.status_code in (400, 422), response.text
    assert response.json()["detail"]
    assert count(db, User) == users


# ---- browsers ------------------------------------------------------------------------------


def test_cors_refuses_foreign_origins_for_credentialed_requests(client, mailbox, settings):
    assert settings.cors_origin_list == ["http://shop.test"]
    token = login(client, mailbox, "admin@shop.test")["access_token"]
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    evil = client.options("/orders", headers={"Origin": "http://evil.test", **preflight})
    assert evil.status_code == 400
    # No Access-Control-Allow-Origin, so the browser refuses (Starlette still lists allow-credentials).
    assert "access-control-allow-origin" not in evil.headers
    assert evil.text == "Disallowed CORS origin"
    read = client.get("/admin/analytics/overview", headers={"Origin": "http://evil.test", "Cookie": f"{SESSION_COOKIE}={token}"})
    assert "access-control-allow-origin" not in read.headers  # the browser will not hand the data to evil.test
    ours = client.options("/orders", headers={"Origin": "http://shop.test", **preflight})
    assert ours.status_code == 200
    assert ours.headers["access-control-allow-origin"] == "http://shop.test"
    assert ours.headers["access-control-allow-credentials"] == "true"


def session_cookie(response) -> dict[str, str | bool]:
    header = response.headers["set-cookie"]
    name_value, *attributes = [part.strip() for part in header.split(";")]
    assert name_value.startswith(f"{SESSION_COOKIE}=")
    parsed: dict[str, str | bool] = {}
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        parsed[key.lower()] = value or True
    return parsed


def log_in_raw(client, mailbox, email: str):
    client.post("/auth/request-code", json={"email": email})
    return client.post("/auth/verify-code", json={"email": email, "code": mailbox.last_code(email)})


def test_session_cookie_flags_over_http_https_and_in_production(client, mailbox, settings, monkeypatch):
    plain = session_cookie(log_in_raw(client, mailbox, "c1@shop.test"))
    assert plain["httponly"] is True and plain["samesite"] == "lax" and plain["path"] == "/" and "secure" not in plain

    secure_client = TestClient(app, base_url="https://testserver")
    with secure_client:
        over_https = session_cookie(log_in_raw(secure_client, mailbox, "c2@shop.test"))
    assert over_https["secure"] is True and over_https["httponly"] is True and over_https["samesite"] == "lax"

    monkeypatch.setattr(settings, "app_env", "production")
    in_production = session_cookie(log_in_raw(client, mailbox, "c3@shop.test"))
    assert in_production["secure"] is True and in_production["httponly"] is True
