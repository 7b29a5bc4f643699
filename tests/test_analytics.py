"""Admin analytics API: exact figures over events seeded with a pinned clock."""

import csv
import datetime as dt
import io
import secrets

import pytest

from app.api import admin as admin_api
from app.models.analytics import EventType
from app.models.user import AuthSession
from app.services import analytics
from app.services.analytics import record_event
from app.services.auth import token_hash
from tests.factories import create_order, create_plan, create_user
from tests.helpers import auth, contract_part, login

# Every analytics answer names its engine; the shop database is always current.
SQL_ENGINE = {"engine": "sql", "fresh_as_of": None}
UTC_EVERYONE = {"tz": "UTC", "exclude_internal": False, "incomplete_day": None}  # the default scope, a past range

ENDPOINTS = ["/admin/analytics/overview", "/admin/analytics/timeseries", "/admin/analytics/projections"]
ALL_TYPES = ["user_signup", "checkout_started", "payment_succeeded", "esim_activated"]


def at(text: str) -> dt.datetime:
    """A UTC moment from 'YYYY-MM-DD HH:MM[:SS[.ffffff]]'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def pin_today(monkeypatch, moment: str) -> None:
    monkeypatch.setattr(admin_api, "utc_now", lambda: at(moment))


class Seeder:
    """Users, orders and their funnel events, each at a given moment."""

    def __init__(self, db):
        self.db = db

    def user(self, signup_at: str | None = None):
        user = create_user(self.db, signup=False)
        if signup_at:
            record_event(self.db, EventType.USER_SIGNUP, user_id=user.id, occurred_at=at(signup_at))
        return user

    def checkout(self, user, plan, when: str | None):
        order = create_order(self.db, user=user, plan=plan)
        if when:
            self._order_event(EventType.CHECKOUT_STARTED, order, when, amount=order.amount_minor_units)
        return order

    def pay(self, order, when: str, amount: int | None = None):
        amount = order.amount_minor_units if amount is None else amount
        self._order_event(EventType.PAYMENT_SUCCEEDED, order, when, amount=amount)

    def activate(self, order, when: str):
        self._order_event(EventType.ESIM_ACTIVATED, order, when)

    def paid_order(self, plan, when: str, amount: int | None = None):
        order = self.checkout(self.user(), plan, None)
        self.pay(order, when, amount)
        return order

    def _order_event(self, event_type, order, when, amount=None):
        record_event(
            self.db,
            event_type,
            user_id=order.user_id,
            order_id=order.id,
            plan_id=order.plan_id,
            amount_minor_units=amount,
            currency=order.currency if amount is not None else None,
            occurred_at=at(when),
        )


@pytest.fixture
def seed(db):
    return Seeder(db)


@pytest.fixture
def admin_headers(db):
    """A real admin session token (stored hashed, checked by the API like any login)."""
    admin = create_user(db, email="analytics-admin@shop.test", is_admin=True, signup=False)
    token = secrets.token_urlsafe(32)
    db.add(AuthSession(user_id=admin.id, token_hash=token_hash(token), created_at=at("2025-01-01 00:00"), expires_at=at("2999-01-01 00:00")))
    db.flush()
    return auth(token)


@pytest.fixture
def march(db, seed):
    """The funnel of 2025-03-01..2025-03-10, with events just outside on both sides."""
    europe = create_plan(db, name="Europe 5 GB", price_minor_units=1000, currency="USD")
    asia = create_plan(db, name="Asia 3 GB", price_minor_units=2500, currency="USD")
    world = create_plan(db, name="World 1 GB", price_minor_units=1500, currency="EUR")
    u1 = seed.user("2025-03-01 00:00:00")
    u2 = seed.user("2025-03-02 08:00")
    u3 = seed.user("2025-03-10 23:59:59.999999")
    u4 = seed.user("2025-02-28 23:59:59.999999")  # previous period
    u5 = seed.user("2025-03-11 00:00:00")  # after the range
    o1 = seed.checkout(u1, europe, "2025-03-01 10:00")
    seed.pay(o1, "2025-03-02 09:00")
    seed.activate(o1, "2025-03-02 09:05")
    o2 = seed.checkout(u1, asia, "2025-03-03 10:00")
    seed.pay(o2, "2025-03-04 11:00")
    o3 = seed.checkout(u2, world, "2025-03-03 12:00")
    seed.pay(o3, "2025-03-04 13:00")
    seed.activate(o3, "2025-03-05 00:00")
    o4 = seed.checkout(u3, europe, "2025-03-05 18:00")
    seed.pay(o4, "2025-03-11 00:00")
    o5 = seed.checkout(u4, europe, "2025-02-25 10:00")
    seed.pay(o5, "2025-02-26 10:00")
    seed.checkout(u5, asia, "2025-03-11 01:00")
    db.flush()
    return {"europe": europe, "asia": asia, "world": world}


def counts(signup=0, checkout=0, payment=0, activation=0) -> dict:
    return dict(zip(ALL_TYPES, (signup, checkout, payment, activation), strict=True))


def bucket(day: str, signup=0, checkout=0, payment=0, activation=0, revenue=None) -> dict:
    # Finance additions: no refunds or failed payments here, so net = revenue and the failure rate is 0 on paying days.
    return {"date": day, "counts": counts(signup, checkout, payment, activation), "revenue": revenue or {},
            "refunds": {}, "net_revenue": revenue or {}, "payments_failed": 0, "payment_failure_rate": 0.0 if payment else None}


MARCH_BUCKETS = [
    bucket("2025-03-01", signup=1, checkout=1),
    bucket("2025-03-02", signup=1, payment=1, activation=1, revenue={"USD": 1000}),
    bucket("2025-03-03", checkout=2),
    bucket("2025-03-04", payment=2, revenue={"EUR": 1500, "USD": 2500}),
    bucket("2025-03-05", checkout=1, activation=1),
    *(bucket(f"2025-03-0{d}") for d in range(6, 10)),
    bucket("2025-03-10", signup=1),
]


def test_overview_exact_figures(client, admin_headers, march):
    response = client.get("/admin/analytics/overview?start_date=2025-03-01&end_date=2025-03-10", headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        **SQL_ENGINE,
        **UTC_EVERYONE,
        "start_date": "2025-03-01",
        "end_date": "2025-03-10",
        "clamped": False,
        "counts": counts(signup=3, checkout=4, payment=3, activation=2),
        "unique_users": counts(signup=3, checkout=3, payment=2, activation=2),
        # People who signed up in the range: u1 and u2 reach every step within 14 days; u3's only
        # checkout came before their signup, so the ordered funnel never sees them check out.
        "conversion": {
            "signup_to_checkout": 2 / 3,
            "checkout_to_payment": 1.0,
            "payment_to_activation": 1.0,
            "signup_to_activation": 2 / 3,
        },
        "event_count_ratios": {
            "signup_to_checkout": 4 / 3,
            "checkout_to_payment": 0.75,
            "payment_to_activation": 2 / 3,
            "signup_to_activation": 2 / 3,
        },
        "conversion_basis": "ordered_funnel_by_user_window_14d",
        "revenue": {"EUR": 1500, "USD": 3500},
        "previous": {
            "start_date": "2025-02-19",
            "end_date": "2025-02-28",
            "counts": counts(signup=1, checkout=1, payment=1),
            "revenue": {"USD": 1000},
            "compares": "whole_days",
            "cut_at": None,
        },
        "top_plans": [
            {"plan_id": march["asia"].id, "plan_name": "Asia 3 GB", "currency": "USD", "revenue_minor_units": 2500, "payments": 1},
            {"plan_id": march["world"].id, "plan_name": "World 1 GB", "currency": "EUR", "revenue_minor_units": 1500, "payments": 1},
            {"plan_id": march["europe"].id, "plan_name": "Europe 5 GB", "currency": "USD", "revenue_minor_units": 1000, "payments": 1},
        ],
        # Finance additions: no refunds or failed payments in this data.
        "refunds": {"EUR": 0, "USD": 0},
        "net_revenue": {"EUR": 1500, "USD": 3500},
        "payments_by_currency": {"EUR": 1, "USD": 2},
        "average_order_value": {"EUR": 1500, "USD": 1750},
        "payments_failed": 0,
        "payment_failure_rate": 0.0,
        "converted": None,
    }


def test_conversion_is_null_when_the_denominator_is_zero(client, admin_headers, march):
    body = client.get("/admin/analytics/overview?start_date=2025-03-05&end_date=2025-03-05", headers=admin_headers).json()
    assert body["counts"] == counts(checkout=1, activation=1)
    assert body["event_count_ratios"] == {
        "signup_to_checkout": None,
        "checkout_to_payment": 0.0,
        "payment_to_activation": None,
        "signup_to_activation": None,
    }
    # Nobody signed up that day: the ordered funnel has no entrants.
    assert body["conversion"] == dict.fromkeys(body["event_count_ratios"])
    assert body["revenue"] == {} and body["top_plans"] == []


def test_overview_filtered_by_event_types_keeps_conversions_of_all_types(client, admin_headers, march):
    query = "start_date=2025-03-01&end_date=2025-03-10&event_types=esim_activated&event_types[]=user_signup"
    body = client.get(f"/admin/analytics/overview?{query}", headers=admin_headers).json()
    assert body["counts"] == {"user_signup": 3, "esim_activated": 2}
    assert body["unique_users"] == {"user_signup": 3, "esim_activated": 2}
    assert body["previous"]["counts"] == {"user_signup": 1, "esim_activated": 0}
    assert body["event_count_ratios"]["checkout_to_payment"] == 0.75
    assert body["conversion"]["checkout_to_payment"] == 1.0
    assert body["revenue"] == {"EUR": 1500, "USD": 3500}


def test_timeseries_buckets_are_zero_filled_ordered_and_add_up(client, admin_headers, march):
    query = "start_date=2025-03-01&end_date=2025-03-10"
    body = client.get(f"/admin/analytics/timeseries?{query}", headers=admin_headers).json()
    assert body == {**SQL_ENGINE, **UTC_EVERYONE, "start_date": "2025-03-01", "end_date": "2025-03-10", "clamped": False,
                    "interval": "day", "event_types": ALL_TYPES, "buckets": MARCH_BUCKETS}
    overview = client.get(f"/admin/analytics/overview?{query}", headers=admin_headers).json()
    assert {t: sum(b["counts"][t] for b in body["buckets"]) for t in ALL_TYPES} == overview["counts"]


def test_timeseries_filter_accepts_both_spellings_in_funnel_order(client, admin_headers, march):
    query = "start_date=2025-03-01&end_date=2025-03-04&event_types[]=payment_succeeded&event_types=user_signup"
    body = client.get(f"/admin/analytics/timeseries?{query}", headers=admin_headers).json()
    assert body["event_types"] == ["user_signup", "payment_succeeded"]
    assert [b["counts"] for b in body["buckets"]] == [
        {"user_signup": 1, "payment_succeeded": 0},
        {"user_signup": 1, "payment_succeeded": 1},
        {"user_signup": 0, "payment_succeeded": 0},
        {"user_signup": 0, "payment_succeeded": 2},
    ]
    assert [b["revenue"] for b in body["buckets"]] == [{}, {"USD": 1000}, {}, {"EUR": 1500, "USD": 2500}]


def test_timeseries_csv_matches_the_json(client, admin_headers, march):
    query = "start_date=2025-03-01&end_date=2025-03-10"
    response = client.get(f"/admin/analytics/timeseries?{query}&format=csv", headers=admin_headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == ("date,user_signup,checkout_started,payment_succeeded,esim_activated,revenue_EUR_minor,revenue_USD_minor,"
                        "refunds_EUR_minor,refunds_USD_minor,net_EUR_minor,net_USD_minor,payments_failed")
    assert lines[1] == "2025-03-01,1,1,0,0,0,0,0,0,0,0,0"
    assert lines[4] == "2025-03-04,0,0,2,0,1500,2500,0,0,1500,2500,0"
    assert len(lines) == 11
    rows = list(csv.DictReader(io.StringIO(response.text)))
    json_buckets = client.get(f"/admin/analytics/timeseries?{query}", headers=admin_headers).json()["buckets"]
    assert [
        {"date": r["date"], "counts": {t: int(r[t]) for t in ALL_TYPES}, "revenue": {c: int(r[f"revenue_{c}_minor"]) for c in ("EUR", "USD") if int(r[f"revenue_{c}_minor"])}}
        for r in rows
    ] == [{k: b[k] for k in ("date", "counts", "revenue")} for b in json_buckets]


@pytest.mark.parametrize(
    ("start", "end", "shown_start", "shown_end", "expected"),
    [
        # 22:30 UTC-2 on Feb 28 is 00:30 UTC on Mar 1.
        ("2025-02-28T22:30:00-02:00", "2025-03-10T23:59:59Z", "2025-03-01", "2025-03-10", counts(3, 4, 3, 2)),
        ("2025-03-01T23:30:00-02:00", "2025-03-10T12:00:00", "2025-03-02", "2025-03-10", counts(2, 3, 3, 2)),
        ("2025-03-01T12:00:00+00:00", "2025-03-10T20:00:00-05:00", "2025-03-01", "2025-03-11", counts(4, 5, 4, 2)),
        ("2025-03-02T03:00:00+05:00", "2025-03-04T23:00:00.5+00:00", "2025-03-01", "2025-03-04", counts(2, 3, 3, 1)),
    ],
)
def test_datetime_parameters_mean_their_utc_day(client, admin_headers, march, start, end, shown_start, shown_end, expected):
    params = {"start_date": start, "end_date": end}
    body = client.get("/admin/analytics/overview", params=params, headers=admin_headers).json()
    assert (body["start_date"], body["end_date"], body["counts"]) == (shown_start, shown_end, expected)


def test_defaults_come_from_settings_and_end_today(client, admin_headers, march, settings, monkeypatch):
    pin_today(monkeypatch, "2025-03-10 15:00")
    body = client.get("/admin/analytics/overview", headers=admin_headers).json()
    assert (body["start_date"], body["end_date"], body["clamped"]) == ("2025-02-09", "2025-03-10", False)
    monkeypatch.setattr(settings, "analytics_default_range_days", 10)
    body = client.get("/admin/analytics/overview", headers=admin_headers).json()
    assert (body["start_date"], body["end_date"]) == ("2025-03-01", "2025-03-10")
    assert body["counts"] == counts(3, 4, 3, 2)
    series = client.get("/admin/analytics/timeseries", headers=admin_headers).json()
    assert series["buckets"] == MARCH_BUCKETS
    only_end = client.get("/admin/analytics/overview?end_date=2025-03-05", headers=admin_headers).json()
    assert (only_end["start_date"], only_end["end_date"]) == ("2025-02-24", "2025-03-05")
    only_start = client.get("/admin/analytics/overview?start_date=2025-03-04", headers=admin_headers).json()
    assert (only_start["start_date"], only_start["end_date"]) == ("2025-03-04", "2025-03-10")


def test_ranges_over_365_days_are_clamped(client, admin_headers, db, seed):
    plan = create_plan(db)
    seed.checkout(seed.user(), plan, "2024-03-10 23:59:59")  # one day before the clamped start
    seed.checkout(seed.user(), plan, "2024-03-11 00:00:00")
    seed.checkout(seed.user(), plan, "2025-03-10 23:59:59")
    db.flush()
    url = "/admin/analytics/overview?start_date=2024-01-01&end_date=2025-03-10"
    body = client.get(url, headers=admin_headers).json()
    assert (body["start_date"], body["end_date"], body["clamped"]) == ("2024-03-11", "2025-03-10", True)
    assert body["counts"]["checkout_started"] == 2
    assert body["previous"]["start_date"] == "2023-03-12" and body["previous"]["end_date"] == "2024-03-10"
    assert body["previous"]["counts"]["checkout_started"] == 1
    series = client.get(url.replace("overview", "timeseries"), headers=admin_headers).json()
    assert series["clamped"] is True and len(series["buckets"]) == 365
    assert series["buckets"][0]["date"] == "2024-03-11" and series["buckets"][-1]["date"] == "2025-03-10"
    exact = client.get("/admin/analytics/overview?start_date=2024-03-11&end_date=2025-03-10", headers=admin_headers).json()
    assert exact["clamped"] is False and exact["counts"]["checkout_started"] == 2
    one_more = client.get("/admin/analytics/overview?start_date=2024-03-10&end_date=2025-03-10", headers=admin_headers).json()
    assert (one_more["start_date"], one_more["clamped"]) == ("2024-03-11", True)


@pytest.fixture
def plans_over_months(db, seed):
    """Thirteen (plan, currency) revenue rows around 2025-01-20..2025-04-10."""
    p = [create_plan(db, name=f"Top {i}", price_minor_units=100, currency="USD") for i in range(12)]
    pay = seed.paid_order
    pay(p[0], "2025-02-10 12:00", 3000)
    pay(p[0], "2025-03-15 12:00", 3000)
    pay(p[0], "2025-01-05 12:00", 5000)  # same month as the first edge, before the range
    pay(p[0], "2025-04-20 12:00", 5000)  # same month as the last edge, after the range
    pay(p[1], "2025-01-25 12:00", 4000)
    pay(p[1], "2025-04-10 23:59:59", 2000)
    pay(p[1], "2025-01-19 23:59:59", 9000)  # the day before the range
    pay(p[2], "2025-03-01 00:00", 6000)
    eur_order = seed.checkout(seed.user(), p[2], None)
    eur_order.currency = "EUR"
    seed.pay(eur_order, "2025-02-28 23:00", 7000)
    pay(p[3], "2025-04-01 00:00", 5000)
    gbp_order = seed.checkout(seed.user(), p[4], None)
    gbp_order.currency = "GBP"
    seed.pay(gbp_order, "2025-01-31 23:59", 4500)
    for plan, when, amount in [
        (p[5], "2025-02-01 00:00", 4000),
        (p[6], "2025-02-12 00:00", 3000),
        (p[7], "2025-02-20 23:59:59", 2000),
        (p[8], "2025-02-21 00:00", 1500),
        (p[9], "2025-03-03 00:00", 1000),
        (p[10], "2025-03-20 00:00", 500),
        (p[11], "2025-04-05 00:00", 100),
    ]:
        pay(plan, when, amount)
    db.flush()
    return p


def row(plan, currency: str, revenue: int, payments: int) -> dict:
    return {"plan_id": plan.id, "plan_name": plan.name, "currency": currency, "revenue_minor_units": revenue, "payments": payments}


def test_top_plans_over_whole_months_and_edge_days(db, plans_over_months):
    p = plans_over_months
    expected = [
        row(p[2], "EUR", 7000, 1),
        row(p[0], "USD", 6000, 2),
        row(p[1], "USD", 6000, 2),  # same revenue and payments as p0: lower plan id first
        row(p[2], "USD", 6000, 1),  # same revenue, fewer payments
        row(p[3], "USD", 5000, 1),
        row(p[4], "GBP", 4500, 1),
        row(p[5], "USD", 4000, 1),
        row(p[6], "USD", 3000, 1),
        row(p[7], "USD", 2000, 1),
        row(p[8], "USD", 1500, 1),
    ]
    assert [p.model_dump() for p in analytics.top_plans(db, analytics.DayRange(dt.date(2025, 1, 20), dt.date(2025, 4, 10)))] == expected


def test_top_plans_over_exactly_whole_months(db, plans_over_months):
    p = plans_over_months
    assert [p.model_dump() for p in analytics.top_plans(db, analytics.DayRange(dt.date(2025, 2, 1), dt.date(2025, 3, 31)))] == [
        row(p[2], "EUR", 7000, 1),
        row(p[0], "USD", 6000, 2),
        row(p[2], "USD", 6000, 1),
        row(p[5], "USD", 4000, 1),
        row(p[6], "USD", 3000, 1),
        row(p[7], "USD", 2000, 1),
        row(p[8], "USD", 1500, 1),
        row(p[9], "USD", 1000, 1),
        row(p[10], "USD", 500, 1),
    ]


def test_top_plans_inside_one_month_through_the_api(client, admin_headers, plans_over_months):
    p = plans_over_months
    body = client.get("/admin/analytics/overview?start_date=2025-02-05&end_date=2025-02-20", headers=admin_headers).json()
    assert body["top_plans"] == [row(p[0], "USD", 3000, 1), row(p[6], "USD", 3000, 1), row(p[7], "USD", 2000, 1)]
    assert body["revenue"] == {"USD": 8000}


BAD_DATES = [
    "2025-02-30",
    "2025-13-01",
    "yesterday",
    "01/03/2025",
    "2025-03-01T25:00:00",
    "2025-03-01T10:00:00+25:00",
    "1969-12-31",
    "0001-01-01T00:00:00+01:00",  # a moment whose UTC day is before year 1
    "9999-12-31T23:59:59-01:00",  # ... or after year 9999
]


@pytest.mark.parametrize("path", ENDPOINTS[:2])
@pytest.mark.parametrize("field", ["start_date", "end_date"])
@pytest.mark.parametrize("value", BAD_DATES)
def test_unparseable_dates_are_422(client, admin_headers, path, field, value):
    response = client.get(path, params={field: value}, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert field in str(response.json()["detail"])


@pytest.mark.parametrize("value", BAD_DATES)
def test_unparseable_as_of_is_422(client, admin_headers, value):
    response = client.get(ENDPOINTS[2], params={"as_of": value}, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert "as_of" in str(response.json()["detail"])


@pytest.mark.parametrize("path", ENDPOINTS[:2])
@pytest.mark.parametrize(
    "query",
    ["start_date=2025-03-02&end_date=2025-03-01", "start_date=2025-03-01T23:30:00-02:00&end_date=2025-03-01T23:00:00Z"],
)
def test_start_after_end_is_422(client, admin_headers, path, query):
    response = client.get(f"{path}?{query}", headers=admin_headers)
    assert response.status_code == 422
    assert "after" in response.json()["detail"]


@pytest.mark.parametrize("path", ENDPOINTS[:2])
@pytest.mark.parametrize(
    "query",
    ["event_types=signup", "event_types[]=refund", "event_types=user_signup&event_types[]=USER_SIGNUP", "event_types[]=user_signup&event_types=x"],
)
def test_unknown_event_types_are_422(client, admin_headers, path, query):
    response = client.get(f"{path}?{query}", headers=admin_headers)
    assert response.status_code == 422
    assert "event_types" in str(response.json()["detail"])


@pytest.mark.parametrize(
    "query",
    ["window_days=2", "window_days=91", "window_days=x", "horizon_days=0", "horizon_days=31", "currency=US", "currency=USDD", "currency=U%24D", "currency=12A"],
)
def test_out_of_range_projection_parameters_are_422(client, admin_headers, query):
    response = client.get(f"{ENDPOINTS[2]}?{query}", headers=admin_headers)
    assert response.status_code == 422
    assert query.split("=")[0] in str(response.json()["detail"])


def test_timeseries_format_must_be_json_or_csv(client, admin_headers):
    assert client.get(f"{ENDPOINTS[1]}?format=xml", headers=admin_headers).status_code == 422


@pytest.fixture
def may(db, seed):
    """Revenue and signups around 2025-05-10; the first event is on 2025-05-01."""
    usd = create_plan(db, price_minor_units=1000, currency="USD")
    eur = create_plan(db, price_minor_units=9999, currency="EUR")
    seed.user("2025-05-01 09:00")
    seed.user("2025-05-06 00:00")
    seed.user("2025-05-06 23:59:59")
    seed.user("2025-05-09 12:00")
    seed.paid_order(usd, "2025-05-03 10:00", 1000)  # the earlier window of as_of 05-10, w=4
    seed.paid_order(usd, "2025-05-05 10:00", 1001)
    seed.paid_order(usd, "2025-05-06 10:00", 1000)  # history 05-06..05-09
    seed.paid_order(usd, "2025-05-08 10:00", 1001)
    seed.paid_order(usd, "2025-05-09 23:59:59", 1)
    seed.paid_order(eur, "2025-05-07 10:00", 9999)
    seed.paid_order(usd, "2025-05-10 00:00", 50000)  # as_of itself: not history
    db.flush()


def day_rows(start: str, values: list[tuple[int, float]]) -> list[dict]:
    first = dt.date.fromisoformat(start)
    return [
        {"date": (first + dt.timedelta(days=i)).isoformat(), "revenue_minor_units": revenue, "signups": signups}
        for i, (revenue, signups) in enumerate(values)
    ]


def get_projection(client, headers, query: str) -> dict:
    response = client.get(f"{ENDPOINTS[2]}?{query}", headers=headers)
    assert response.status_code == 200, response.text
    return contract_part(response.json())


def test_projection_moving_average(client, admin_headers, may):
    query = "as_of=2025-05-10&window_days=4&horizon_days=3&currency=usd"
    body = get_projection(client, admin_headers, query)
    # history revenue 1000+0+1001+1 = 2002 → mean 500.5 → 501 (half up); signups 3/4.
    assert body == {
        **SQL_ENGINE,
        "method": "moving_average",
        "window_days": 4,
        "horizon_days": 3,
        "currency": "USD",
        "as_of": "2025-05-10",
        "history": day_rows("2025-05-06", [(1000, 2), (0, 0), (1001, 0), (1, 1)]),
        "forecast": day_rows("2025-05-10", [(501, 0.75)] * 3),
        "projected_revenue_minor_units": 1503,
        "projected_signups": 2.25,
        "growth_rate": 2002 / 2001 - 1,
        "note": None,
    }


def test_projection_in_another_currency_without_earlier_revenue(client, admin_headers, may):
    body = get_projection(client, admin_headers, "as_of=2025-05-10&window_days=4&horizon_days=1&currency=EUR")
    assert body["history"] == day_rows("2025-05-06", [(0, 2), (9999, 0), (0, 0), (0, 1)])
    assert body["forecast"] == day_rows("2025-05-10", [(2500, 0.75)])  # 2499.75 rounds to 2500
    assert body["growth_rate"] is None  # no EUR revenue in the earlier window


def test_growth_compares_with_the_earlier_days_since_the_first_event(client, admin_headers, may):
    response = client.get(f"{ENDPOINTS[2]}?as_of=2025-05-10&window_days=5&horizon_days=2", headers=admin_headers).json()
    body = contract_part(response)
    # history 05-05..05-09 holds 1001+1000+1001+1 = 3003 → 600.6 → 601; signups 3/5.
    assert body["forecast"] == day_rows("2025-05-10", [(601, 0.6)] * 2)
    assert (body["projected_revenue_minor_units"], body["projected_signups"]) == (1202, 1.2)
    # The earlier window 04-30..05-04 starts a day before the first event (05-01): it used to
    # give null ("no revenue before", the review's 90-day bug). Now the 4 days 05-01..05-04
    # (1000 on 05-03) are the comparison: 3003/5 per day against 1000/4 per day.
    assert body["growth_rate"] == 3003 * 4 / (1000 * 5) - 1
    assert response["growth_rate_compares"] == {
        "current": {"start": "2025-05-05", "end": "2025-05-09", "days": 5},
        "previous": {"start": "2025-05-01", "end": "2025-05-04", "days": 4},
    }
    at_first_event = client.get(f"{ENDPOINTS[2]}?as_of=2025-05-09&window_days=4&horizon_days=1", headers=admin_headers).json()
    # earlier window 05-01..05-04 starts on the first event's day: 1000 before, 3002 now.
    assert at_first_event["growth_rate"] == 3002 / 1000 - 1
    assert at_first_event["growth_rate_compares"]["previous"] == {"start": "2025-05-01", "end": "2025-05-04", "days": 4}
    before_any = client.get(f"{ENDPOINTS[2]}?as_of=2025-05-04&window_days=3&horizon_days=1", headers=admin_headers).json()
    # history 05-01..05-03; the earlier days 04-28..04-30 are all before the first event.
    assert (before_any["growth_rate"], before_any["growth_rate_compares"]) == (None, None)


def test_projection_without_enough_data(client, admin_headers, may):
    body = get_projection(client, admin_headers, "as_of=2025-05-04&window_days=5&horizon_days=2")
    assert body["history"] == day_rows("2025-04-29", [(0, 0), (0, 0), (0, 1), (0, 0), (1000, 0)])
    assert (body["forecast"], body["projected_revenue_minor_units"], body["projected_signups"]) == ([], 0, 0)
    assert (body["note"], body["growth_rate"]) == ("Not enough data", None)
    just_enough = get_projection(client, admin_headers, "as_of=2025-05-04&window_days=3&horizon_days=1")
    assert just_enough["note"] is None and just_enough["forecast"] == day_rows("2025-05-04", [(333, 1 / 3)])


def test_projection_defaults_from_settings(client, admin_headers, may, settings, monkeypatch):
    pin_today(monkeypatch, "2025-05-10 08:00")
    monkeypatch.setattr(settings, "analytics_projection_window_days", 4)
    monkeypatch.setattr(settings, "analytics_projection_horizon_days", 2)
    monkeypatch.setattr(settings, "default_currency", "EUR")
    body = contract_part(client.get(ENDPOINTS[2], headers=admin_headers).json())
    assert (body["as_of"], body["window_days"], body["horizon_days"], body["currency"]) == ("2025-05-10", 4, 2, "EUR")
    assert body["forecast"] == day_rows("2025-05-10", [(2500, 0.75)] * 2)
    # 23:30 at UTC-2 on 05-09 is 05-10 in UTC.
    offset = client.get(ENDPOINTS[2], params={"as_of": "2025-05-09T23:30:00-02:00", "currency": "USD"}, headers=admin_headers).json()
    assert offset["as_of"] == "2025-05-10" and offset["forecast"][0]["revenue_minor_units"] == 501


def login_keeping_cookie(client, mailbox, email: str) -> str:
    """Log in through the API and keep the session cookie it sets; returns the bearer token."""
    client.post("/auth/request-code", json={"email": email})
    response = client.post("/auth/verify-code", json={"email": email, "code": mailbox.last_code(email)})
    assert response.status_code == 200, response.text
    assert client.cookies.get("shop_session") == response.json()["access_token"]
    return response.json()["access_token"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_admin_only_with_real_tokens(client, mailbox, path):
    assert client.get(path).status_code == 401
    assert client.get(path, headers=auth("not-a-real-token")).status_code == 401
    customer = login(client, mailbox, "customer@shop.test")
    assert client.get(path, headers=auth(customer["access_token"])).status_code == 403
    admin = login(client, mailbox, "admin@shop.test")
    assert client.get(path, headers=auth(admin["access_token"])).status_code == 200
    assert client.post("/auth/logout", headers=auth(admin["access_token"])).status_code == 204
    assert client.get(path, headers=auth(admin["access_token"])).status_code == 401


@pytest.mark.parametrize("path", ENDPOINTS)
def test_admin_only_with_session_cookies(client, mailbox, path):
    client.cookies.set("shop_session", "forged-cookie")
    assert client.get(path).status_code == 401
    client.cookies.clear()
    login_keeping_cookie(client, mailbox, "customer@shop.test")
    assert client.get(path).status_code == 403
    client.cookies.clear()
    login_keeping_cookie(client, mailbox, "admin@shop.test")
    assert client.get(path).status_code == 200
    assert client.post("/auth/logout").status_code == 204
    assert client.get(path).status_code == 401


def test_a_currency_first_seen_after_a_report_is_in_the_next_one(client, admin_headers, seed, db):
    # The daily read pivots on the currencies the process has seen; a new one must not be missed.
    usd, chf = create_plan(db, currency="USD", price_minor_units=1000), create_plan(db, currency="CHF", price_minor_units=700)
    seed.paid_order(usd, "2025-03-02 10:00")
    params = {"start_date": "2025-03-01", "end_date": "2025-03-03"}
    first = client.get("/admin/analytics/timeseries", params=params, headers=admin_headers).json()
    assert [b["revenue"] for b in first["buckets"]] == [{}, {"USD": 1000}, {}]
    analytics.rollup_repo.KNOWN_CURRENCIES.codes = ("USD",)  # as if this process had only ever seen USD
    seed.paid_order(chf, "2025-03-03 09:00")
    db.flush()
    second = client.get("/admin/analytics/timeseries", params=params, headers=admin_headers).json()
    assert [b["revenue"] for b in second["buckets"]] == [{}, {"USD": 1000}, {"CHF": 700}]
    assert [b["net_revenue"] for b in second["buckets"]] == [{}, {"USD": 1000}, {"CHF": 700}]
    assert "CHF" in analytics.rollup_repo.KNOWN_CURRENCIES.codes
