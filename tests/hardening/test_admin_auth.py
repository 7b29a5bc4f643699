"""Deny by default: every /admin API operation, found in the app's OpenAPI schema, refuses
requests without valid admin credentials, and a refused write changes nothing."""

import pytest
from sqlalchemy import func, select

from app.main import app
from app.models.plan import Plan
from tests.helpers import auth, login

PLAN = {"name": "Probe", "region": "Europe", "data_mb": 1024, "validity_days": 7, "price_minor_units": 500, "currency": "USD"}
ADMIN_ROUTES = sorted(
    (method.upper(), path)
    for path, operations in app.openapi()["paths"].items()
    if path.startswith("/admin")
    for method in operations
)


def send(client, method: str, path: str, headers: dict):
    path = path.replace("{plan_id}", "1").replace("{order_id}", "1")
    body = {"profiles": [{"iccid": "89440000000000000009", "activation_code": "x"}]} if "esim" in path else PLAN
    return client.request(method, path, headers=headers, json=body if method == "POST" else None)


def test_the_admin_surface_is_what_we_think():
    assert ("GET", "/admin/analytics/overview") in ADMIN_ROUTES
    assert ("POST", "/admin/plans") in ADMIN_ROUTES
    assert len(ADMIN_ROUTES) >= 5


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_routes_refuse_everyone_but_admins(client, mailbox, db, method, path):
    customer = login(client, mailbox, "not-an-admin@shop.test")["access_token"]
    plans_before = db.scalar(select(func.count()).select_from(Plan))

    anonymous = send(client, method, path, {})
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert send(client, method, path, auth("made-up-token")).status_code == 401
    assert send(client, method, path, {"Cookie": "shop_session=made-up-token"}).status_code == 401
    forbidden = send(client, method, path, auth(customer))
    assert forbidden.status_code == 403, forbidden.text
    assert forbidden.json() == {"detail": "Admin access required"}

    client.post("/auth/logout", headers=auth(customer))
    assert send(client, method, path, auth(customer)).status_code == 401
    assert db.scalar(select(func.count()).select_from(Plan)) == plans_before
