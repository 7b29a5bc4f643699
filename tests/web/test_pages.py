"""Page routes without a browser: redirects, 403, CSRF, login forms, static files (every database)."""

import re
from pathlib import Path

import plotly
import pytest
from sqlalchemy import func, select

from app.api.pages import safe_next
from app.models.user import LoginCode, User
from app.web.csrf import CSRF_COOKIE
from tests.helpers import login

TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return TOKEN.search(page.text).group(1)


def request_code(client, email: str, token: str, next_path: str = "/admin", **headers):
    return client.post("/login", data={"email": email, "next": next_path, "csrf_token": token}, headers=headers, follow_redirects=False)


def verify(client, email: str, code: str, token: str, next_path: str = "/admin"):
    data = {"email": email, "code": code, "next": next_path, "csrf_token": token}
    return client.post("/login/verify", data=data, follow_redirects=False)


def log_in_through_forms(client, mailbox, email: str, next_path: str = "/admin"):
    token = csrf_token(client)
    assert request_code(client, email, token, next_path).status_code == 200
    return verify(client, email, mailbox.last_code(email.strip().lower()), token, next_path)


@pytest.mark.parametrize(
    ("path", "login_url"),
    [
        ("/admin", "/login?next=%2Fadmin"),
        ("/admin/analytics", "/login?next=%2Fadmin%2Fanalytics"),
        (
            "/admin/analytics?start_date=2026-01-01&event_types=user_signup",
            "/login?next=%2Fadmin%2Fanalytics%3Fstart_date%3D2026-01-01%26event_types%3Duser_signup",
        ),
    ],
)
def test_pages_send_visitors_to_login_with_the_page_to_return_to(client, path, login_url):
    response = client.get(path, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, login_url)


def test_login_returns_to_next_with_an_httponly_session_cookie(client, mailbox):
    wanted = "/admin/analytics?start_date=2026-01-01&end_date=2026-01-31"
    response = log_in_through_forms(client, mailbox, "Admin@Shop.Test ", wanted)
    assert (response.status_code, response.headers["location"]) == (303, wanted)
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("shop_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = client.get(wanted)
    assert page.status_code == 200
    assert "<h1>Funnel analytics</h1>" in page.text
    assert f'src="/static/vendor/plotly.min.js?v={plotly.__version__}"' in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert client.get("/auth/me").json()["email"] == "admin@shop.test"
    # Already logged in: /login goes straight on.
    again = client.get("/login?next=/admin", follow_redirects=False)
    assert (again.status_code, again.headers["location"]) == (303, "/admin")


@pytest.mark.parametrize(
    "unsafe",
    ["//evil.example/admin", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "admin", "/admin\r\nX: y", ""],
)
def test_next_is_only_ever_a_path_of_this_site(unsafe):
    assert safe_next(unsafe) == "/admin"


def test_an_offsite_next_lands_on_admin_after_login(client, mailbox):
    response = log_in_through_forms(client, mailbox, "admin@shop.test", "//evil.example/steal")
    assert (response.status_code, response.headers["location"]) == (303, "/admin")


def test_safe_next_keeps_paths_and_queries():
    assert safe_next("/admin/analytics?window_days=7&currency=JPY") == "/admin/analytics?window_days=7&currency=JPY"


def test_a_non_admin_gets_a_403_page(client, mailbox):
    token = login(client, mailbox, "customer@shop.test")["access_token"]
    client.cookies.set("shop_session", token)
    for path in ("/admin", "/admin/analytics"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 403
        assert "Access denied" in response.text and "customer@shop.test" in response.text


def users(db) -> int:
    return db.scalar(select(func.count()).select_from(User))


def test_forms_without_a_valid_csrf_token_change_nothing(client, mailbox, db):
    token = csrf_token(client)
    before = (users(db), len(mailbox.messages("new@shop.test")))
    assert request_code(client, "new@shop.test", "").status_code == 403
    assert request_code(client, "new@shop.test", "0" * 64).status_code == 403
    nonce = client.cookies.get(CSRF_COOKIE)
    client.cookies.set(CSRF_COOKIE, "x" * 43)  # a planted cookie does not match the token
    assert request_code(client, "new@shop.test", token).status_code == 403
    client.cookies.set(CSRF_COOKIE, nonce)
    refused = request_code(client, "new@shop.test", token, Origin="http://evil.example")
    assert refused.status_code == 403 and "another site" in refused.text
    assert request_code(client, "new@shop.test", token, Referer="http://evil.example/page").status_code == 403
    assert (users(db), len(mailbox.messages("new@shop.test"))) == before

    accepted = request_code(client, "new@shop.test", token, Origin="http://testserver")
    assert accepted.status_code == 200 and 'name="code"' in accepted.text
    assert (users(db), len(mailbox.messages("new@shop.test"))) == (before[0] + 1, before[1] + 1)


def test_a_wrong_code_is_refused_and_counted(client, mailbox, db):
    token = csrf_token(client)
    assert request_code(client, "admin@shop.test", token).status_code == 200
    wrong = "000000" if mailbox.last_code("admin@shop.test") != "000000" else "111111"
    response = verify(client, "admin@shop.test", wrong, token)
    assert response.status_code == 400
    assert "Invalid or expired code" in response.text and "shop_session" not in response.headers.get("set-cookie", "")
    user_id = db.scalar(select(User.id).where(User.email == "admin@shop.test"))
    assert db.scalar(select(LoginCode.attempts).where(LoginCode.user_id == user_id)) == 1
    assert verify(client, "admin@shop.test", mailbox.last_code("admin@shop.test"), token).status_code == 303


def test_a_bad_email_is_a_422_page_and_sends_nothing(client, mailbox):
    sent = len(mailbox.messages())
    response = request_code(client, "not-an-email", csrf_token(client))
    assert response.status_code == 422 and "Enter a valid email address" in response.text
    assert len(mailbox.messages()) == sent


def test_too_many_code_requests_is_a_429_page(client, settings):
    token = csrf_token(client)
    statuses = [request_code(client, "busy@shop.test", token).status_code for _ in range(settings.rate_limit_email_per_hour + 1)]
    assert statuses == [200] * settings.rate_limit_email_per_hour + [429]


def test_logout_needs_the_csrf_token_and_ends_the_session(client, mailbox):
    assert log_in_through_forms(client, mailbox, "admin@shop.test").status_code == 303
    token = csrf_token(client, "/admin")
    assert client.post("/logout", data={"csrf_token": "forged"}, follow_redirects=False).status_code == 403
    assert client.get("/auth/me").status_code == 200
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert client.get("/auth/me").status_code == 401
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_static_files_and_plotly_from_the_wheel(client):
    wheel_copy = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    response = client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.content == wheel_copy.read_bytes()
    assert client.head("/static/vendor/plotly.min.js").status_code == 200
    for name in ("dashboard.js", "panels.js", "charts.js", "format.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/../api/pages.py").status_code == 404
