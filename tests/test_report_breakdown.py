"""`breakdown=` on the overview and the timeseries: exact figures per value over hand-built events."""

import datetime as dt

import pytest
from sqlalchemy import select

from app.models.analytics import EventType
from app.models.order import Order
from app.services import report_breakdown, zones
from app.services.analytics import record_event
from tests.factories import create_plan, create_user
from tests.finance_helpers import admin_token, at

TYPES = ["user_signup", "checkout_started", "payment_succeeded", "esim_activated"]
RANGE = "start_date=2025-03-03&end_date=2025-03-12"


def four(signup=0, checkout=0, payment=0, activation=0) -> dict:
    return dict(zip(TYPES, (signup, checkout, payment, activation), strict=True))


def value(name, key, counts, users, revenue=None) -> dict:
    return {"value": name, "key": key, "counts": four(*counts), "unique_users": four(*users), "revenue": revenue or {}}


class Shop:
    """Users, orders and their events through record_event, each at a given UTC moment."""

    def __init__(self, db):
        self.db = db

    def user(self, signup: str | None):
        user = create_user(self.db, signup=False)
        if signup:
            record_event(self.db, EventType.USER_SIGNUP, user_id=user.id, occurred_at=at(signup))
        return user

    def order(self, user, plan, checkout: str, paid: str | None = None, activated: str | None = None) -> Order:
        order = Order(user_id=user.id, plan_id=plan.id, amount_minor_units=plan.price_minor_units, currency=plan.currency)
        self.db.add(order)
        self.db.flush()
        common = {"user_id": user.id, "order_id": order.id, "plan_id": plan.id}
        record_event(self.db, EventType.CHECKOUT_STARTED, **common, currency=plan.currency, occurred_at=at(checkout))
        if paid:
            record_event(self.db, EventType.PAYMENT_SUCCEEDED, **common, amount_minor_units=plan.price_minor_units,
                         currency=plan.currency, occurred_at=at(paid))
        if activated:  # activations carry no currency: "(none)" in the currency breakdown
            record_event(self.db, EventType.ESIM_ACTIVATED, **common, occurred_at=at(activated))
        return order


@pytest.fixture
def headers(db):
    return admin_token(db)


@pytest.fixture
def march(db):
    """2025-03-03 (Monday) .. 2025-03-12: 18 events in the range, a few just outside it.

    u2 signs up on Sunday 23:59:59, u3 on Monday 00:00 (a week edge); u4 signed up in
    February; u5 has no signup event.
    """
    shop = Shop(db)
    plans = {
        "europe": create_plan(db, name="Europe 5 GB", region="Europe", currency="USD", price_minor_units=1000),
        "asia": create_plan(db, name="Asia 3 GB", region="Asia", currency="EUR", price_minor_units=2500),
        "world": create_plan(db, name="World 1 GB", region="Global", currency="USD", price_minor_units=1500),
        "japan": create_plan(db, name="Japan 1 GB", region="Asia", currency="JPY", price_minor_units=1500),
    }
    u1 = shop.user("2025-03-03 09:00")
    u2 = shop.user("2025-03-09 23:59:59")
    u3 = shop.user("2025-03-10 00:00")
    u4 = shop.user("2025-02-20 10:00")
    u5 = shop.user(None)
    shop.order(u1, plans["europe"], "2025-03-03 10:00", "2025-03-04 10:00", "2025-03-04 11:00")
    shop.order(u1, plans["asia"], "2025-03-05 10:00", "2025-03-05 10:30")
    shop.order(u2, plans["world"], "2025-03-10 08:00", "2025-03-10 09:00", "2025-03-11 00:00")
    shop.order(u3, plans["europe"], "2025-03-11 12:00", "2025-03-12 23:59:59.999999")
    shop.order(u4, plans["japan"], "2025-03-06 10:00", "2025-03-06 11:00")
    shop.order(u5, plans["asia"], "2025-03-07 10:00")
    shop.order(u5, plans["europe"], "2025-03-08 10:00", "2025-03-08 10:05")
    shop.order(u3, plans["europe"], "2025-03-13 00:00")  # after the range
    shop.order(u4, plans["world"], "2025-03-02 10:00", "2025-03-02 23:59:59.999999")  # before it
    db.flush()
    return plans


def overview(client, headers, query: str) -> dict:
    response = client.get(f"/admin/analytics/overview?{query}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def assert_values_add_up(body: dict) -> None:
    """Every event and every amount of the range is in exactly one value."""
    values = body["breakdown"]["values"]
    for event_type, n in body["counts"].items():
        assert sum(v["counts"][event_type] for v in values) == n, event_type
    summed: dict[str, int] = {}
    for v in values:
        for currency, amount in v["revenue"].items():
            summed[currency] = summed.get(currency, 0) + amount
    assert summed == body["revenue"]


def test_without_the_parameter_there_is_no_breakdown(client, headers, march):
    assert "breakdown" not in overview(client, headers, RANGE)
    series = client.get(f"/admin/analytics/timeseries?{RANGE}", headers=headers).json()
    assert "series" not in series


def test_overall_figures_of_the_data(client, headers, march):
    body = overview(client, headers, RANGE)
    assert body["counts"] == four(3, 7, 6, 2)
    assert body["unique_users"] == four(3, 5, 5, 2)
    assert body["revenue"] == {"EUR": 2500, "JPY": 1500, "USD": 4500}


def test_by_plan(client, headers, march):
    body = overview(client, headers, f"{RANGE}&breakdown=plan")
    assert body["breakdown"] == {"by": "plan", "values": [
        value("Europe 5 GB", march["europe"].id, (0, 3, 3, 1), (0, 3, 3, 1), {"USD": 3000}),
        # Signups have no plan; ties of 3 events go by name, and "(" sorts before letters.
        value("(none)", None, (3, 0, 0, 0), (3, 0, 0, 0)),
        value("Asia 3 GB", march["asia"].id, (0, 2, 1, 0), (0, 2, 1, 0), {"EUR": 2500}),
        value("World 1 GB", march["world"].id, (0, 1, 1, 1), (0, 1, 1, 1), {"USD": 1500}),
        value("Japan 1 GB", march["japan"].id, (0, 1, 1, 0), (0, 1, 1, 0), {"JPY": 1500}),
    ]}
    assert_values_add_up(body)


def test_by_region(client, headers, march):
    body = overview(client, headers, f"{RANGE}&breakdown=region")
    assert body["breakdown"]["values"] == [
        value("Europe", "Europe", (0, 3, 3, 1), (0, 3, 3, 1), {"USD": 3000}),
        # Asia 3 GB and Japan 1 GB: u1 and u5 check out Asia 3 GB, u4 Japan 1 GB.
        value("Asia", "Asia", (0, 3, 2, 0), (0, 3, 2, 0), {"EUR": 2500, "JPY": 1500}),
        value("(none)", None, (3, 0, 0, 0), (3, 0, 0, 0)),
        value("Global", "Global", (0, 1, 1, 1), (0, 1, 1, 1), {"USD": 1500}),
    ]
    assert_values_add_up(body)


def test_by_currency(client, headers, march):
    body = overview(client, headers, f"{RANGE}&breakdown=currency")
    assert body["breakdown"]["values"] == [
        value("USD", "USD", (0, 4, 4, 0), (0, 4, 4, 0), {"USD": 4500}),
        # Signups and activations carry no currency.
        value("(none)", None, (3, 0, 0, 2), (3, 0, 0, 2)),
        value("EUR", "EUR", (0, 2, 1, 0), (0, 2, 1, 0), {"EUR": 2500}),
        value("JPY", "JPY", (0, 1, 1, 0), (0, 1, 1, 0), {"JPY": 1500}),
    ]
    assert_values_add_up(body)


def test_by_signup_week_across_the_week_edge(client, headers, march):
    body = overview(client, headers, f"{RANGE}&breakdown=signup_week")
    assert body["breakdown"]["values"] == [
        # u1 and u2 (Sunday 23:59:59): signups 2, checkouts 3, payments 3, activations 2.
        value("2025-03-03", "2025-03-03", (2, 3, 3, 2), (2, 2, 2, 2), {"EUR": 2500, "USD": 2500}),
        # u5 has no signup event.
        value("(none)", None, (0, 2, 1, 0), (0, 1, 1, 0), {"USD": 1000}),
        # u3 (Monday 00:00) starts the next week.
        value("2025-03-10", "2025-03-10", (1, 1, 1, 0), (1, 1, 1, 0), {"USD": 1000}),
        # u4 signed up before the range: its events still go to its signup week.
        value("2025-02-17", "2025-02-17", (0, 1, 1, 0), (0, 1, 1, 0), {"JPY": 1500}),
    ]
    assert_values_add_up(body)


def test_by_signup_month(client, headers, march):
    body = overview(client, headers, f"{RANGE}&breakdown=signup_month")
    assert body["breakdown"]["values"] == [
        value("2025-03-01", "2025-03-01", (3, 4, 4, 2), (3, 3, 3, 2), {"EUR": 2500, "USD": 3500}),
        value("(none)", None, (0, 2, 1, 0), (0, 1, 1, 0), {"USD": 1000}),
        value("2025-02-01", "2025-02-01", (0, 1, 1, 0), (0, 1, 1, 0), {"JPY": 1500}),
    ]
    assert_values_add_up(body)


def test_shown_types_rank_the_values_and_revenue_still_adds_up(client, headers, march):
    body = overview(client, headers, f"{RANGE}&breakdown=plan&event_types=user_signup")
    one = lambda n: {"user_signup": n}  # noqa: E731
    assert body["breakdown"]["values"] == [
        {"value": "(none)", "key": None, "counts": one(3), "unique_users": one(3), "revenue": {}},
        # No shown events, but their payments' revenue: ranked after, by name.
        *({"value": plan.name, "key": plan.id, "counts": one(0), "unique_users": one(0), "revenue": revenue}
          for plan, revenue in [(march["asia"], {"EUR": 2500}), (march["europe"], {"USD": 3000}),
                                (march["japan"], {"JPY": 1500}), (march["world"], {"USD": 1500})]),
    ]
    assert_values_add_up(body)


@pytest.fixture
def twelve_plans(db):
    """Plan k (1..12) with k checkouts; one user checks out plans 1 and 2; 3 signups; two payments."""
    shop = Shop(db)
    plans = [create_plan(db, name=f"Plan {k:02d}", region=f"Region {k:02d}", price_minor_units=100 * k) for k in range(1, 13)]
    shared, third = shop.user(None), shop.user(None)
    for _ in range(3):
        shop.user("2025-03-04 12:00")
    for k, plan in enumerate(plans, start=1):
        buyer = shared if k <= 2 else third if k == 3 else shop.user(None)
        for i in range(k):
            paid = "2025-03-06 12:00" if i == 0 and k in (2, 12) else None
            shop.order(buyer, plan, f"2025-03-05 {i:02d}:00", paid)
    db.flush()
    return plans


def test_more_than_ten_values_end_in_other(client, headers, twelve_plans):
    body = overview(client, headers, f"{RANGE}&breakdown=plan")
    values = body["breakdown"]["values"]
    plans = {plan.name: plan for plan in twelve_plans}
    assert values[0] == value("Plan 12", plans["Plan 12"].id, (0, 12, 1, 0), (0, 1, 1, 0), {"USD": 1200})
    assert values[1:9] == [value(f"Plan {k:02d}", plans[f"Plan {k:02d}"].id, (0, k, 0, 0), (0, 1, 0, 0)) for k in range(11, 3, -1)]
    # (none) ties with Plan 02 and Plan 03 at 3 events and wins the tie by name: the 10th value.
    assert values[9] == value("(none)", None, (3, 0, 0, 0), (3, 0, 0, 0))
    # Plans 01..03: 6 checkouts and the payment of Plan 02; their users counted once (2, not 3).
    assert values[10] == value("Other", None, (0, 6, 1, 0), (0, 2, 1, 0), {"USD": 200})
    assert len(values) == 11
    assert_values_add_up(body)


def test_an_unknown_breakdown_is_422(client, headers):
    for path in ("overview", "timeseries"):
        response = client.get(f"/admin/analytics/{path}?breakdown=planet", headers=headers)
        assert response.status_code == 422
        assert "breakdown" in response.json()["detail"]


def zero_days(first: int, last: int) -> list[dict]:
    return [{"date": f"2025-03-{d:02d}", "counts": four(), "revenue": {}} for d in range(first, last + 1)]


def day(d: int, counts=(0, 0, 0, 0), revenue=None) -> dict:
    return {"date": f"2025-03-{d:02d}", "counts": four(*counts), "revenue": revenue or {}}


def test_timeseries_series_per_day(client, headers, march):
    response = client.get(f"/admin/analytics/timeseries?{RANGE}&breakdown=plan", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    series = {s["value"]: s for s in body["series"]}
    # The overview's values, in its order.
    assert [s["value"] for s in body["series"]] == ["Europe 5 GB", "(none)", "Asia 3 GB", "World 1 GB", "Japan 1 GB"]
    assert series["Europe 5 GB"]["key"] == march["europe"].id
    assert series["Europe 5 GB"]["buckets"] == [
        day(3, (0, 1, 0, 0)), day(4, (0, 0, 1, 1), {"USD": 1000}), *zero_days(5, 7),
        day(8, (0, 1, 1, 0), {"USD": 1000}), *zero_days(9, 10), day(11, (0, 1, 0, 0)), day(12, (0, 0, 1, 0), {"USD": 1000}),
    ]
    assert series["(none)"]["buckets"] == [day(3, (1, 0, 0, 0)), *zero_days(4, 8), day(9, (1, 0, 0, 0)), day(10, (1, 0, 0, 0)),
                                            *zero_days(11, 12)]
    assert series["World 1 GB"]["buckets"] == [*zero_days(3, 9), day(10, (0, 1, 1, 0), {"USD": 1500}), day(11, (0, 0, 0, 1)),
                                                *zero_days(12, 12)]
    assert_series_add_up(body)


def assert_series_add_up(body: dict) -> None:
    for i, bucket in enumerate(body["buckets"]):
        days = [s["buckets"][i] for s in body["series"]]
        assert all(d["date"] == bucket["date"] for d in days)
        assert {t: sum(d["counts"][t] for d in days) for t in body["event_types"]} == bucket["counts"], bucket["date"]
        summed: dict[str, int] = {}
        for d in days:
            for currency, amount in d["revenue"].items():
                summed[currency] = summed.get(currency, 0) + amount
        assert summed == bucket["revenue"], bucket["date"]


@pytest.mark.parametrize("by", ["plan", "region", "currency", "signup_week", "signup_month"])
def test_every_timeseries_breakdown_adds_up_per_day(client, headers, march, by):
    body = client.get(f"/admin/analytics/timeseries?{RANGE}&breakdown={by}", headers=headers).json()
    values = overview(client, headers, f"{RANGE}&breakdown={by}")["breakdown"]["values"]
    assert [(s["value"], s["key"]) for s in body["series"]] == [(v["value"], v["key"]) for v in values]
    assert_series_add_up(body)


def test_timeseries_other_adds_up(client, headers, twelve_plans):
    body = client.get(f"/admin/analytics/timeseries?{RANGE}&breakdown=plan", headers=headers).json()
    assert body["series"][-1]["value"] == "Other"
    assert body["series"][-1]["buckets"][2] == day(5, (0, 6, 0, 0))
    assert body["series"][-1]["buckets"][3] == day(6, (0, 0, 1, 0), {"USD": 200})
    assert_series_add_up(body)


BERLIN = zones.zone("Europe/Berlin")


def first_buyer(db, plan) -> int:
    """The user of the plan's first order (u2 for World 1 GB, u1 for Europe 5 GB)."""
    return db.scalars(select(Order.user_id).where(Order.plan_id == plan.id).order_by(Order.id)).first()


def test_a_zone_moves_the_signup_week_and_the_range(db, march):
    """In Berlin (UTC+1) u2's signup is Monday 00:59:59 and the range ends at 23:00 UTC on the 12th."""
    start_at, end_before = zones.day_span(dt.date(2025, 3, 3), dt.date(2025, 3, 12), BERLIN)
    body = report_breakdown.overview_breakdown(db, "signup_week", start_at, end_before, TYPES, tz="Europe/Berlin")
    assert [v.model_dump() for v in body.values] == [
        value("2025-03-03", "2025-03-03", (1, 2, 2, 1), (1, 1, 1, 1), {"EUR": 2500, "USD": 1000}),
        # u2 and u3; u3's payment at 23:59:59.999999 UTC is on the 13th in Berlin.
        value("2025-03-10", "2025-03-10", (2, 2, 1, 1), (2, 2, 1, 1), {"USD": 1500}),
        value("(none)", None, (0, 2, 1, 0), (0, 1, 1, 0), {"USD": 1000}),
        # u4's payment at 23:59:59.999999 UTC on the 2nd is on the 3rd in Berlin.
        value("2025-02-17", "2025-02-17", (0, 1, 2, 0), (0, 1, 1, 0), {"JPY": 1500, "USD": 1500}),
    ]


def test_a_zone_buckets_local_days_and_excludes_users(db, march):
    start_at, end_before = zones.day_span(dt.date(2025, 3, 9), dt.date(2025, 3, 12), BERLIN)
    u2 = first_buyer(db, march["world"])
    series = report_breakdown.timeseries_series(db, "region", start_at, end_before, TYPES, tz="Europe/Berlin",
                                                excluded_user_ids={u2})
    by_value = {s.value: [b.model_dump(mode="json") for b in s.buckets] for s in series}
    # u2's signup (Sunday 23:59:59 UTC) and World 1 GB order are left out; u3 signs up on the 10th.
    assert by_value == {
        "(none)": [day(9), day(10, (1, 0, 0, 0)), day(11), day(12)],
        "Europe": [day(9), day(10), day(11, (0, 1, 0, 0)), day(12)],
    }


def test_an_excluded_user_leaves_every_value_and_the_other_users_count(db, march):
    """Excluding u1 (the overview's internal-user filter): Europe loses u1's checkout, payment and activation."""
    start_at, end_before = zones.day_span(dt.date(2025, 3, 3), dt.date(2025, 3, 12), zones.zone("UTC"))
    u1 = first_buyer(db, march["europe"])
    body = report_breakdown.overview_breakdown(db, "plan", start_at, end_before, TYPES, excluded_user_ids={u1})
    assert [v.model_dump() for v in body.values] == [
        value("Europe 5 GB", march["europe"].id, (0, 2, 2, 0), (0, 2, 2, 0), {"USD": 2000}),
        value("World 1 GB", march["world"].id, (0, 1, 1, 1), (0, 1, 1, 1), {"USD": 1500}),
        value("(none)", None, (2, 0, 0, 0), (2, 0, 0, 0)),
        value("Japan 1 GB", march["japan"].id, (0, 1, 1, 0), (0, 1, 1, 0), {"JPY": 1500}),
        value("Asia 3 GB", march["asia"].id, (0, 1, 0, 0), (0, 1, 0, 0)),
    ]
