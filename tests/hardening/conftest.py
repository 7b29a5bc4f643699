"""Fixtures for the hardening tests: a shop with an admin, a plan and inventory, on real commits."""

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from app.main import app
from tests.conftest import MAIL_DIR, empty_tables
from tests.helpers import Mailbox, auth, login, valid_iccid


@dataclass
class Shop:
    admin_token: str
    customer_token: str
    plan_id: int

    @property
    def admin_headers(self) -> dict:
        return auth(self.admin_token)

    @property
    def customer_headers(self) -> dict:
        return auth(self.customer_token)


def build_shop(client: TestClient, *, profiles: int = 3, price: int = 1999, tag: str = "shop") -> Shop:
    """Log in an admin and a customer through the API and create a plan with `profiles` eSIMs."""
    mailbox = Mailbox(MAIL_DIR)
    admin_token = login(client, mailbox, "admin@shop.test")["access_token"]
    plan = client.post(
        "/admin/plans",
        json={"name": "Europe 5 GB", "region": "Europe", "data_mb": 5120, "validity_days": 30, "price_minor_units": price, "currency": "USD"},
        headers=auth(admin_token),
    )
    assert plan.status_code == 201, plan.text
    plan_id = plan.json()["id"]
    if profiles:
        batch = [
            {"iccid": valid_iccid(f"8944{plan_id:06d}{i:08d}"), "activation_code": f"LPA:1$smdp.test${plan_id}-{i}"}
            for i in range(profiles)
        ]
        added = client.post(f"/admin/plans/{plan_id}/esim-profiles", json={"profiles": batch}, headers=auth(admin_token))
        assert added.status_code == 201, added.text
    customer_token = login(client, mailbox, f"customer-{tag}@shop.test")["access_token"]
    return Shop(admin_token, customer_token, plan_id)


@pytest.fixture(scope="module")
def live_shop(engine):
    """A TestClient on real commits plus a Shop, shared by a module; tables emptied after."""
    empty_tables(engine)
    with TestClient(app) as client:
        yield client, build_shop(client)
    empty_tables(engine)
