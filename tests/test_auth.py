"""Passwordless login: request, verify, sessions, logout, limits, admins."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from app.api.deps import SESSION_COOKIE
from app.models.analytics import AnalyticsEvent
from app.models.user import AuthSession, LoginCode, User
from tests.helpers import auth, login


def signup_events(db, user_id):
    return db.scalar(
        select(func.count()).select_from(AnalyticsEvent).where(
            AnalyticsEvent.user_id == user_id, AnalyticsEvent.event_type == "user_signup"
        )
    )


def test_request_code_creates_user_once_and_normalizes_email(client, db, mailbox):
    # The mail folder is shared by the run: other tests may have written to u1@shop.test before.
    sent_before = len(mailbox.messages("u1@shop.test"))
    first = client.post("/auth/request-code", json={"email": "  U1@Shop.Test "})
    second = client.post("/auth/request-code", json={"email": "u1@shop.test"})
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    users = db.scalars(select(User).where(User.email == "u1@shop.test")).all()
    assert len(users) == 1
    assert signup_events(db, users[0].id) == 1
    assert len(mailbox.messages("u1@shop.test")) == sent_before + 2


def test_known_and_unknown_emails_get_the_same_answer(client, db):
    known = client.post("/auth/request-code", json={"email": "known@shop.test"})
    again = client.post("/auth/request-code", json={"email": "known@shop.test"})
    unknown = client.post("/auth/request-code", json={"email": "never-seen@shop.test"})
    assert again.status_code == unknown.status_code == known.status_code == 202
    assert again.content == unknown.content


@pytest.mark.parametrize("email", ["not-an-email", "", "a@", "@b.test", "x" * 300 + "@shop.test"])
def test_bad_email_is_422_and_creates_nothing(client, db, email):
    before = db.scalar(select(func.count()).select_from(User))
    response = client.post("/auth/request-code", json={"email": email})
    assert response.status_code == 422
    assert db.scalar(select(func.count()).select_from(User)) == before


def test_code_is_stored_hashed_and_verifies_once(client, db, mailbox):
    client.post("/auth/request-code", json={"email": "u2@shop.test"})
    code = mailbox.last_code("u2@shop.test")
    stored = db.scalar(select(LoginCode.code_hash).join(User).where(User.email == "u2@shop.test"))
    assert code not in stored and len(stored) == 64
    ok = client.post("/auth/verify-code", json={"email": "U2@shop.test", "code": code})
    assert ok.status_code == 200
    body = ok.json()
    assert body["token_type"] == "bearer"
    assert body["user"]["email"] == "u2@shop.test" and body["user"]["is_admin"] is False
    reused = client.post("/auth/verify-code", json={"email": "u2@shop.test", "code": code})
    assert reused.status_code == 400


def test_session_cookie_flags_and_cookie_auth(client, mailbox):
    client.post("/auth/request-code", json={"email": "u3@shop.test"})
    response = client.post("/auth/verify-code", json={"email": "u3@shop.test", "code": mailbox.last_code("u3@shop.test")})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}={response.json()['access_token']};")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http in development
    me = client.get("/auth/me")  # the cookie alone
    assert me.status_code == 200 and me.json()["email"] == "u3@shop.test"


def test_me_and_logout_with_bearer_token(client, db, mailbox):
    token = login(client, mailbox, "u4@shop.test")["access_token"]
    assert client.get("/auth/me", headers=auth(token)).json()["email"] == "u4@shop.test"
    assert client.post("/auth/logout", headers=auth(token)).status_code == 204
    assert client.get("/auth/me", headers=auth(token)).status_code == 401
    assert db.scalar(select(AuthSession.revoked_at).where(AuthSession.user_id == db.scalar(select(User.id).where(User.email == "u4@shop.test")))) is not None


def test_no_or_bad_credentials_are_401(client):
    assert client.get("/auth/me").status_code == 401
    response = client.get("/auth/me", headers=auth("not-a-token"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert client.post("/auth/logout").status_code == 401


def test_wrong_code_is_400_and_five_wrong_tries_end_the_code(client, mailbox):
    client.post("/auth/request-code", json={"email": "u5@shop.test"})
    code = mailbox.last_code("u5@shop.test")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert client.post("/auth/verify-code", json={"email": "u5@shop.test", "code": wrong}).status_code == 400
    blocked = client.post("/auth/verify-code", json={"email": "u5@shop.test", "code": code})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


def test_resend_replaces_the_old_code(client, mailbox):
    client.post("/auth/request-code", json={"email": "u6@shop.test"})
    old = mailbox.last_code("u6@shop.test")
    client.post("/auth/request-code", json={"email": "u6@shop.test"})
    new = mailbox.last_code("u6@shop.test")
    if old != new:
        assert client.post("/auth/verify-code", json={"email": "u6@shop.test", "code": old}).status_code == 400
    assert client.post("/auth/verify-code", json={"email": "u6@shop.test", "code": new}).status_code == 200


def test_expired_code_is_400(client, mailbox, monkeypatch):
    client.post("/auth/request-code", json={"email": "u7@shop.test"})
    code = mailbox.last_code("u7@shop.test")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10, seconds=1)
    monkeypatch.setattr("app.services.auth.utc_now", lambda: later)
    assert client.post("/auth/verify-code", json={"email": "u7@shop.test", "code": code}).status_code == 400


def test_unknown_email_verify_is_400(client):
    assert client.post("/auth/verify-code", json={"email": "nobody@shop.test", "code": "123456"}).status_code == 400


def test_request_rate_limit_per_email_is_429_with_retry_after(client, settings):
    statuses = [client.post("/auth/request-code", json={"email": "u8@shop.test"}).status_code for _ in range(6)]
    assert statuses == [202] * settings.rate_limit_email_per_hour + [429]
    response = client.post("/auth/request-code", json={"email": "u8@shop.test"})
    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= 3600


def test_request_rate_limit_per_ip(client, settings, monkeypatch):
    monkeypatch.setattr(settings, "rate_limit_ip_per_hour", 3)
    statuses = [client.post("/auth/request-code", json={"email": f"ip{i}@shop.test"}).status_code for i in range(4)]
    assert statuses == [202, 202, 202, 429]


def test_admin_emails_become_admins_at_login(client, mailbox):
    body = login(client, mailbox, "Admin@Shop.Test")
    assert body["user"]["is_admin"] is True
