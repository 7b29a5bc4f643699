"""Plans and eSIM inventory import."""

import io

import pytest
from sqlalchemy import func, select

from app.errors import Conflict, InvalidInput
from app.models.esim import EsimProfile
from app.services.catalog import add_profiles, iccid_problem, luhn_valid, read_profiles_csv
from tests import factories
from tests.helpers import auth, login, valid_iccid

PLAN = {"name": "Japan 10 GB", "region": "Asia", "data_mb": 10240, "validity_days": 15, "price_minor_units": 2500, "currency": "JPY"}
GOOD = "89441000000000000018"  # 20 digits, Luhn-valid


@pytest.fixture
def admin_headers(client, mailbox):
    return auth(login(client, mailbox, "admin@shop.test")["access_token"])


def profile_count(db):
    return db.scalar(select(func.count()).select_from(EsimProfile))


def test_luhn_and_iccid_rules():
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert luhn_valid(GOOD)
    assert iccid_problem(GOOD) is None
    assert iccid_problem(valid_iccid("894410000000000001")) is None  # 19 digits
    assert iccid_problem("89441000000000000014") == "has an invalid Luhn check digit"
    assert iccid_problem("12441000000000000013") == "must start with 89"
    assert iccid_problem("8944100000000000") == "must be 19 or 20 digits long"
    assert iccid_problem("8944100000000000001x") == "must contain digits only"


def test_plans_listing_and_admin_creation(client, admin_headers):
    created = client.post("/admin/plans", json=PLAN, headers=admin_headers)
    assert created.status_code == 201
    plan = created.json()
    assert plan == {**PLAN, "id": plan["id"], "active": True}
    assert plan in client.get("/plans").json()


@pytest.mark.parametrize(
    "change",
    [{"price_minor_units": -1}, {"currency": "US"}, {"currency": "U1D"}, {"data_mb": 0}, {"name": ""}, {"price_minor_units": "ten"}],
)
def test_bad_plan_is_422(client, admin_headers, change):
    assert client.post("/admin/plans", json={**PLAN, **change}, headers=admin_headers).status_code == 422


def test_plan_admin_endpoints_need_an_admin(client, mailbox):
    assert client.post("/admin/plans", json=PLAN).status_code == 401
    customer = auth(login(client, mailbox, "customer@shop.test")["access_token"])
    assert client.post("/admin/plans", json=PLAN, headers=customer).status_code == 403
    assert client.post("/admin/plans/1/esim-profiles", json={"profiles": []}, headers=customer).status_code == 403


def test_profile_import_adds_the_whole_batch(client, db, admin_headers):
    plan = factories.create_plan(db)
    batch = [{"iccid": valid_iccid(f"8944200000000000{i:02d}"), "activation_code": f"LPA:1$smdp$A{i}"} for i in range(4)]
    response = client.post(f"/admin/plans/{plan.id}/esim-profiles", json={"profiles": batch}, headers=admin_headers)
    assert response.status_code == 201 and response.json() == {"added": 4}
    assert profile_count(db) == 4


@pytest.mark.parametrize("bad", ["89441000000000000014", "1234", "8944100000000000001X", "99441000000000000013"])
def test_one_invalid_iccid_rejects_the_batch(client, db, admin_headers, bad):
    plan = factories.create_plan(db)
    batch = [{"iccid": GOOD, "activation_code": "LPA:1$a"}, {"iccid": bad, "activation_code": "LPA:1$b"}]
    response = client.post(f"/admin/plans/{plan.id}/esim-profiles", json={"profiles": batch}, headers=admin_headers)
    assert response.status_code == 422
    assert "profiles[1].iccid" in response.json()["detail"]
    assert profile_count(db) == 0


def test_known_iccid_rejects_the_batch_with_409(client, db, admin_headers):
    plan = factories.create_plan(db)
    url = f"/admin/plans/{plan.id}/esim-profiles"
    assert client.post(url, json={"profiles": [{"iccid": GOOD, "activation_code": "LPA:1$a"}]}, headers=admin_headers).status_code == 201
    other = valid_iccid("894430000000000000")
    response = client.post(url, json={"profiles": [{"iccid": other, "activation_code": "x"}, {"iccid": GOOD, "activation_code": "y"}]}, headers=admin_headers)
    assert response.status_code == 409
    assert GOOD in response.json()["detail"]
    assert profile_count(db) == 1


def test_duplicate_inside_a_batch_is_409(client, db, admin_headers):
    plan = factories.create_plan(db)
    response = client.post(
        f"/admin/plans/{plan.id}/esim-profiles",
        json={"profiles": [{"iccid": GOOD, "activation_code": "a"}, {"iccid": GOOD, "activation_code": "b"}]},
        headers=admin_headers,
    )
    assert response.status_code == 409 and profile_count(db) == 0


def test_profiles_for_unknown_plan_is_404(client, admin_headers):
    response = client.post("/admin/plans/999999/esim-profiles", json={"profiles": [{"iccid": GOOD, "activation_code": "a"}]}, headers=admin_headers)
    assert response.status_code == 404


def test_csv_import_reads_columns_and_validates(db):
    plan = factories.create_plan(db)
    rows = read_profiles_csv(io.StringIO(f"iccid,activation_code\n{GOOD},LPA:1$x\n"))
    assert rows == [(GOOD, "LPA:1$x")]
    assert add_profiles(db, plan.id, rows) == 1
    with pytest.raises(InvalidInput):
        read_profiles_csv(io.StringIO("iccid\n123\n"))
    with pytest.raises(Conflict):
        add_profiles(db, plan.id, rows)
