"""Timeseries by ISO week and calendar month: buckets dated on the period's first day, partial
when the range cuts them, sums of the days (converted: of the days' rounded figures)."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from app.models.analytics import EventType
from app.services import fx
from app.services.analytics import record_event
from app.services.dates import DayRange, Period, periods
from tests.factories import create_order, create_plan, create_user
from tests.finance_helpers import admin_token, at, paid_order, refund_event

TYPES = ["user_signup", "checkout_started", "payment_succeeded", "esim_activated"]
# Thursday 2024-12-26 .. Tuesday 2025-02-04: cut weeks and months at both ends, across a year end.
RANGE = "start_date=2024-12-26&end_date=2025-02-04"


def counts(signup=0, checkout=0, payment=0, activation=0) -> dict:
    return dict(zip(TYPES, (signup, checkout, payment, activation), strict=True))


def failed_payment(db, order, when: str, attempt: str) -> None:
    record_event(db, EventType.PAYMENT_FAILED, user_id=order.user_id, order_id=order.id, plan_id=order.plan_id,
                 amount_minor_units=order.amount_minor_units, currency=order.currency, occurred_at=at(when), fact_id=attempt)


def checkout(db, user, plan, when: str):
    order = create_order(db, user=user, plan=plan)
    record_event(db, EventType.CHECKOUT_STARTED, user_id=user.id, order_id=order.id, plan_id=plan.id,
                 amount_minor_units=order.amount_minor_units, currency=order.currency, occurred_at=at(when))
    return order


@pytest.fixture
def admin(db):
    return admin_token(db)


@pytest.fixture
def winter(db):
    """Events of 2024-12-22 .. 2025-02-05; one EUR rate (1 EUR = 1.40 USD) for the whole span."""
    fx.load_rates(db, {(dt.date(2024, 12, 20), "EUR"): Decimal(1), (dt.date(2024, 12, 20), "USD"): Decimal("1.4")})
    usd = create_plan(db, name="Winter USD", price_minor_units=1000, currency="USD")
    cent = create_plan(db, name="Winter cent", price_minor_units=1, currency="EUR")
    create_user(db, now=at("2024-12-22 12:00"))  # the Sunday before the range's first week
    paid_order(db, price=700, currency="USD", when="2024-12-25 09:00")  # in the first week, before the range
    first = create_user(db, now=at("2024-12-26 10:00"))
    o1 = checkout(db, first, usd, "2024-12-26 11:00")
    # 1 cent = 1.4 US cents on each of two days: 1 + 1 by day, where one rounding of the week would give 3.
    paid_order(db, price=1, currency="EUR", when="2024-12-28 12:00", plan=cent)
    paid_order(db, price=1, currency="EUR", when="2024-12-29 13:00", plan=cent)
    record_event(db, EventType.PAYMENT_SUCCEEDED, user_id=first.id, order_id=o1.id, plan_id=usd.id,
                 amount_minor_units=1000, currency="USD", occurred_at=at("2024-12-31 23:59:59.999999"))
    paid_order(db, price=1500, currency="EUR", when="2025-01-01 00:00")  # 2100 US cents
    failed_payment(db, create_order(db, user=first, plan=usd), "2025-01-02 08:00", "ch_fail_1")
    refund_event(db, o1, amount=300, when="2025-01-05 18:00", refund_id="re_winter_1")
    checkout(db, create_user(db, now=at("2025-01-15 09:00")), cent, "2025-01-15 09:30")
    record_event(db, EventType.ESIM_ACTIVATED, user_id=first.id, order_id=o1.id, plan_id=usd.id, occurred_at=at("2025-02-02 23:00"))
    paid_order(db, price=2500, currency="USD", when="2025-02-03 00:00")
    failed_payment(db, create_order(db, user=first, plan=usd), "2025-02-04 23:59:59", "ch_fail_2")
    paid_order(db, price=900, currency="USD", when="2025-02-05 00:00")  # after the range
    db.flush()


def bucket(day, partial, *, counts_, revenue=None, refunds=None, net=None, failed=0, rate=None, converted=None) -> dict:
    body = {"date": day, "partial": partial, "counts": counts_, "revenue": revenue or {}, "refunds": refunds or {},
            "net_revenue": net if net is not None else (revenue or {}), "payments_failed": failed, "payment_failure_rate": rate}
    if converted is not None:
        gross, refunded = converted
        body |= {"converted_revenue_minor_units": gross, "converted_refunds_minor_units": refunded,
                 "converted_net_revenue_minor_units": gross - refunded}
    return body


WEEKS = [
    bucket("2024-12-23", True, counts_=counts(1, 1, 2), revenue={"EUR": 2}, rate=0.0, converted=(2, 0)),
    bucket("2024-12-30", False, counts_=counts(payment=2), revenue={"EUR": 1500, "USD": 1000}, refunds={"USD": 300},
           net={"EUR": 1500, "USD": 700}, failed=1, rate=1 / 3, converted=(3100, 300)),
    bucket("2025-01-06", False, counts_=counts(), converted=(0, 0)),
    bucket("2025-01-13", False, counts_=counts(signup=1, checkout=1), converted=(0, 0)),
    bucket("2025-01-20", False, counts_=counts(), converted=(0, 0)),
    bucket("2025-01-27", False, counts_=counts(activation=1), converted=(0, 0)),
    bucket("2025-02-03", True, counts_=counts(payment=1), revenue={"USD": 2500}, failed=1, rate=0.5, converted=(2500, 0)),
]
MONTHS = [
    bucket("2024-12-01", True, counts_=counts(1, 1, 3), revenue={"EUR": 2, "USD": 1000}, rate=0.0, converted=(1002, 0)),
    bucket("2025-01-01", False, counts_=counts(1, 1, 1), revenue={"EUR": 1500}, refunds={"USD": 300},
           net={"EUR": 1500, "USD": -300}, failed=1, rate=0.5, converted=(2100, 300)),
    bucket("2025-02-01", True, counts_=counts(payment=1, activation=1), revenue={"USD": 2500}, failed=1, rate=0.5,
           converted=(2500, 0)),
]


def without_converted(buckets: list[dict]) -> list[dict]:
    return [{k: v for k, v in b.items() if not k.startswith("converted_")} for b in buckets]


@pytest.mark.parametrize(("interval", "expected"), [("week", WEEKS), ("month", MONTHS)])
def test_weeks_and_months_sum_their_days_in_the_range(client, admin, winter, interval, expected):
    response = client.get(f"/admin/analytics/timeseries?{RANGE}&interval={interval}", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "engine": "sql", "fresh_as_of": None, "tz": "UTC", "exclude_internal": False, "incomplete_day": None, "start_date": "2024-12-26", "end_date": "2025-02-04", "clamped": False,
        "interval": interval, "event_types": TYPES, "buckets": without_converted(expected),
    }


@pytest.mark.parametrize(("interval", "expected"), [("week", WEEKS), ("month", MONTHS)])
def test_converted_figures_are_sums_of_the_days_rounded_figures(client, admin, winter, interval, expected):
    body = client.get(f"/admin/analytics/timeseries?{RANGE}&interval={interval}&currency=USD", headers=admin).json()
    assert body["currency"] == "USD"
    assert body["buckets"] == expected


def test_every_interval_adds_up_to_the_same_totals(client, admin, winter):
    def totals(interval: str) -> tuple:
        buckets = client.get(f"/admin/analytics/timeseries?{RANGE}&interval={interval}&currency=USD", headers=admin).json()["buckets"]
        return (
            {t: sum(b["counts"][t] for b in buckets) for t in TYPES},
            sum(b["payments_failed"] for b in buckets),
            sum(b["converted_net_revenue_minor_units"] for b in buckets),
        )

    assert totals("day") == totals("week") == totals("month") == (counts(2, 2, 5, 1), 2, 5302)
    overview = client.get(f"/admin/analytics/overview?{RANGE}&currency=USD", headers=admin).json()
    assert overview["counts"] == counts(2, 2, 5, 1)
    assert overview["converted"]["net_revenue_minor_units"] == 5302


def test_day_interval_is_the_default_and_has_no_partial(client, admin, winter):
    default = client.get(f"/admin/analytics/timeseries?{RANGE}", headers=admin).json()
    assert client.get(f"/admin/analytics/timeseries?{RANGE}&interval=day", headers=admin).json() == default
    assert default["interval"] == "day"
    assert len(default["buckets"]) == 41
    assert all("partial" not in b for b in default["buckets"])


def test_a_range_inside_one_week_is_one_partial_bucket_dated_monday(client, admin, winter):
    body = client.get("/admin/analytics/timeseries?start_date=2024-12-31&end_date=2025-01-02&interval=week", headers=admin).json()
    assert body["buckets"] == [
        bucket("2024-12-30", True, counts_=counts(payment=2), revenue={"EUR": 1500, "USD": 1000}, failed=1, rate=1 / 3),
    ]


def test_whole_periods_are_not_partial(client, admin, winter):
    weeks = client.get("/admin/analytics/timeseries?start_date=2024-12-30&end_date=2025-01-12&interval=week", headers=admin).json()
    assert [(b["date"], b["partial"]) for b in weeks["buckets"]] == [("2024-12-30", False), ("2025-01-06", False)]
    month = client.get("/admin/analytics/timeseries?start_date=2025-01-01&end_date=2025-01-31&interval=month", headers=admin).json()
    assert month["buckets"] == without_converted(MONTHS[1:2])


def test_csv_has_a_partial_column_for_weeks_and_months(client, admin, winter):
    response = client.get(f"/admin/analytics/timeseries?{RANGE}&interval=month&format=csv&currency=USD", headers=admin)
    assert response.status_code == 200, response.text
    assert response.text.splitlines()[0] == (
        "date,partial,user_signup,checkout_started,payment_succeeded,esim_activated,revenue_EUR_minor,revenue_USD_minor,"
        "refunds_EUR_minor,refunds_USD_minor,net_EUR_minor,net_USD_minor,payments_failed,"
        "revenue_USD_minor_converted,refunds_USD_minor_converted,net_USD_minor_converted"
    )
    assert [row for row in csv.reader(io.StringIO(response.text))][1:] == [
        ["2024-12-01", "true", "1", "1", "3", "0", "2", "1000", "0", "0", "2", "1000", "0", "1002", "0", "1002"],
        ["2025-01-01", "false", "1", "1", "1", "0", "1500", "0", "0", "300", "1500", "-300", "1", "2100", "300", "1800"],
        ["2025-02-01", "true", "0", "0", "1", "1", "0", "2500", "0", "0", "0", "2500", "1", "2500", "0", "2500"],
    ]
    days = client.get(f"/admin/analytics/timeseries?{RANGE}&format=csv", headers=admin)
    assert "partial" not in days.text.splitlines()[0]


@pytest.mark.parametrize("value", ["year", "", "WEEK", "days"])
def test_unknown_interval_is_422_naming_it(client, admin, value):
    response = client.get(f"/admin/analytics/timeseries?interval={value}", headers=admin)
    assert response.status_code == 422
    assert response.json() == {"detail": f"interval: {value!r} is not one of day, week, month"}


def test_periods_of_a_leap_february_and_a_single_day():
    feb = periods(DayRange(dt.date(2024, 2, 1), dt.date(2024, 2, 29)), "month")
    assert feb == [Period(dt.date(2024, 2, 1), dt.date(2024, 2, 1), dt.date(2024, 2, 29), partial=False)]
    sunday = periods(DayRange(dt.date(2024, 3, 3), dt.date(2024, 3, 3)), "week")
    assert sunday == [Period(dt.date(2024, 2, 26), dt.date(2024, 3, 3), dt.date(2024, 3, 3), partial=True)]
    assert periods(DayRange(dt.date(2024, 3, 3), dt.date(2024, 3, 4)), "day") == [
        Period(dt.date(2024, 3, 3), dt.date(2024, 3, 3), dt.date(2024, 3, 3), partial=False),
        Period(dt.date(2024, 3, 4), dt.date(2024, 3, 4), dt.date(2024, 3, 4), partial=False),
    ]
