"""GET /admin/analytics/projections with method/level: exact values on hand-made rollups."""

import datetime as dt
import math
import secrets

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.api import admin as admin_api
from app.models.analytics import AnalyticsDailyTotal, EventType
from app.models.user import AuthSession
from app.services import bitmap_refresher, forecast
from app.services.analytics import record_event
from app.services.auth import token_hash
from tests.factories import create_order, create_plan, create_user
from tests.helpers import auth
from tests.test_forecast import SERIES, WEEK_C, WEEK_D, Z80

URL = "/admin/analytics/projections"
FIRST = dt.date(2025, 3, 3)  # a Monday; 28 days of data: 03-03 .. 03-30
SIGNUPS = [1, 2, 3, 4, 5, 6, 7] * 4  # the same every week


def half_up(value: float) -> int:
    return math.floor(value + 0.5)


@pytest.fixture
def admin_headers(db):
    admin = create_user(db, email="forecast-admin@shop.test", is_admin=True, signup=False)
    token = secrets.token_urlsafe(32)
    moment = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    db.add(AuthSession(user_id=admin.id, token_hash=token_hash(token), created_at=moment, expires_at=moment.replace(year=2999)))
    db.flush()
    return auth(token)


@pytest.fixture
def four_weeks(db):
    """Rollup rows as record_event leaves them: USD revenue SERIES×100, payments SERIES//10, EUR on Sundays."""
    rows = []
    for i, revenue in enumerate(SERIES):
        day = FIRST + dt.timedelta(days=i)
        rows.append({"day": day, "event_type": EventType.USER_SIGNUP.value, "currency": "", "event_count": SIGNUPS[i], "revenue_minor_units": 0})
        rows.append({"day": day, "event_type": EventType.PAYMENT_SUCCEEDED.value, "currency": "USD",
                     "event_count": revenue // 10, "revenue_minor_units": revenue * 100})
        if day.weekday() == 6:
            rows.append({"day": day, "event_type": EventType.PAYMENT_SUCCEEDED.value, "currency": "EUR",
                         "event_count": 1, "revenue_minor_units": 999})
    db.execute(insert(AnalyticsDailyTotal), rows)
    db.flush()


def get(client, headers, **params) -> dict:
    response = client.get(URL, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_seasonal_naive_with_intervals_totals_and_backtest(client, admin_headers, four_weeks):
    body = get(client, admin_headers, as_of="2025-03-31", window_days=7, horizon_days=7, method="seasonal_naive")
    sigma = math.sqrt(248 / 21) * 100  # revenue: the hand-made series × 100
    assert [f["revenue_minor_units"] for f in body["forecast"]] == [v * 100 for v in WEEK_D]
    assert [f["revenue_lower"] for f in body["forecast"]] == [half_up(v * 100 - Z80 * sigma) for v in WEEK_D]
    assert [f["revenue_upper"] for f in body["forecast"]] == [half_up(v * 100 + Z80 * sigma) for v in WEEK_D]
    # signups repeat exactly every week: no seasonal error, a zero-width interval
    assert [(f["signups"], f["signups_lower"], f["signups_upper"]) for f in body["forecast"]] == [(s, s, s) for s in range(1, 8)]
    assert [f["payments"] for f in body["forecast"]] == [v // 10 for v in WEEK_D]
    assert (body["projected_revenue_minor_units"], body["projected_signups"], body["projected_payments"]) == (28800, 28, 28)
    assert body["totals"]["signups"] == {"value": 28, "lower": 28, "upper": 28}
    assert body["totals"]["revenue"]["lower"] < 28800 < body["totals"]["revenue"]["upper"]
    assert body["models"] == {"revenue": "seasonal_naive", "signups": "seasonal_naive", "payments": "seasonal_naive"}
    assert body["training"] == {"start": "2025-03-03", "end": "2025-03-30", "days": 28}
    assert body["last_complete_day"] == "2025-03-30"
    revenue = body["backtest"]["revenue"]
    assert (revenue["origins"], revenue["horizon_days"], revenue["chosen"]) == (["2025-03-17", "2025-03-24"], 7, "seasonal_naive")
    assert revenue["methods"]["seasonal_naive"]["mae"] == pytest.approx(4400 / 14, rel=1e-12)
    assert revenue["methods"]["seasonal_naive"]["mase"] == pytest.approx((22 / 12 + 22 / 17) / 2, rel=1e-12)
    assert revenue["methods"]["seasonal_naive"]["coverage"] == 10 / 14
    assert revenue["methods"]["moving_average"]["mae"] == pytest.approx((874 / 7 + 122) * 100 / 14, rel=1e-12)
    assert body["growth_rate"] == 28800 / 29400 - 1  # week D against week C
    assert body["growth_rate_compares"] == {
        "current": {"start": "2025-03-24", "end": "2025-03-30", "days": 7},
        "previous": {"start": "2025-03-17", "end": "2025-03-23", "days": 7},
    }
    assert (body["method"], body["level"], body["note"]) == ("seasonal_naive", 80, None)


def test_auto_names_what_it_chose_and_why_ets_was_left_out(client, admin_headers, four_weeks):
    body = get(client, admin_headers, as_of="2025-03-31", window_days=7, horizon_days=7, method="auto", level=95)
    assert body["models"] == {"revenue": "seasonal_naive", "signups": "seasonal_naive", "payments": "seasonal_naive"}
    assert body["note"] == "ETS needs 28 days of history plus 7 to test it; 28 available, so moving average or seasonal naive instead."
    sigma = math.sqrt(248 / 21) * 100
    assert body["forecast"][0]["revenue_upper"] == half_up(1000 + 1.959963984540054 * sigma)
    assert set(body["backtest"]["revenue"]["methods"]) == {"moving_average", "seasonal_naive"}


def test_below_fourteen_days_since_the_first_event_there_is_not_enough_data(client, admin_headers, four_weeks):
    thirteen = get(client, admin_headers, as_of="2025-03-16", method="auto")
    assert (thirteen["note"], thirteen["forecast"], thirteen["projected_revenue_minor_units"]) == ("Not enough data", [], 0)
    assert thirteen["backtest"] is None and thirteen["totals"] is None
    fourteen = get(client, admin_headers, as_of="2025-03-17", window_days=7, horizon_days=7, method="auto")
    assert fourteen["note"] == (
        "ETS needs 28 days of history plus 7 to test it; 14 available, so moving average or seasonal naive instead. "
        "Too little history to compare methods (14 days): seasonal naive used."
    )
    assert [f["revenue_minor_units"] for f in fourteen["forecast"]] == [v * 100 for v in [12, 22, 28, 40, 50, 66, 70]]
    assert fourteen["backtest"]["revenue"]["origins"] == []


def test_a_future_as_of_keeps_today_and_later_out_of_the_history(client, admin_headers, four_weeks, monkeypatch):
    monkeypatch.setattr(admin_api, "utc_now", lambda: dt.datetime(2025, 3, 29, 10, tzinfo=dt.UTC))
    body = get(client, admin_headers, as_of="2025-03-31", window_days=7, horizon_days=7, method="seasonal_naive")
    # today is 03-29 (partial, and its rollup rows exist): history ends 03-28
    assert [h["date"] for h in body["history"]] == [(dt.date(2025, 3, 22) + dt.timedelta(days=i)).isoformat() for i in range(7)]
    assert body["last_complete_day"] == "2025-03-28" and body["training"]["end"] == "2025-03-28"
    # 03-31 is 3 days after 03-28: the forecast starts 3 weekdays into the last week (a Monday)
    assert [f["date"] for f in body["forecast"]][0] == "2025-03-31"
    assert [f["revenue_minor_units"] for f in body["forecast"]] == [v * 100 for v in WEEK_D[:5] + WEEK_C[5:]]
    assert body["note"] == "as_of is 2 days after today: history ends 2025-03-28, the last complete day."
    moving = get(client, admin_headers, as_of="2025-03-31", window_days=7, horizon_days=1)
    assert moving["forecast"][0]["revenue_minor_units"] == half_up(sum(WEEK_C[5:] + WEEK_D[:5]) * 100 / 7)


def test_another_currency_and_its_payments(client, admin_headers, four_weeks):
    body = get(client, admin_headers, as_of="2025-03-31", window_days=14, horizon_days=7, currency="eur", method="seasonal_naive")
    assert [(h["revenue_minor_units"], h["payments"]) for h in body["history"]] == [(0, 0)] * 6 + [(999, 1)] + [(0, 0)] * 6 + [(999, 1)]
    assert [f["revenue_minor_units"] for f in body["forecast"]] == [0] * 6 + [999]
    assert body["projected_payments"] == 1 and body["currency"] == "EUR"
    assert body["growth_rate"] == 0.0  # 2 × 999 in both fortnights


def test_the_default_stays_the_contracts_moving_average(client, admin_headers, four_weeks):
    body = get(client, admin_headers, as_of="2025-03-31", window_days=7, horizon_days=2)
    mean = half_up(sum(WEEK_D) * 100 / 7)
    assert (body["method"], body["models"]["revenue"]) == ("moving_average", "moving_average")
    assert [f["revenue_minor_units"] for f in body["forecast"]] == [mean, mean]
    assert [f["signups"] for f in body["forecast"]] == [4.0, 4.0] and body["note"] is None
    sample_sd = math.sqrt(sum((v * 100 - sum(WEEK_D) * 100 / 7) ** 2 for v in WEEK_D) / 6)
    assert body["forecast"][0]["revenue_upper"] == half_up(sum(WEEK_D) * 100 / 7 + Z80 * sample_sd * math.sqrt(8 / 7))


def test_a_late_event_changes_the_answer(client, admin_headers, db):
    plan = create_plan(db, price_minor_units=500, currency="USD")
    for i in range(60):
        day = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC) + dt.timedelta(days=i)
        for _ in range(1 + (i % 7 == 5)):
            user = create_user(db, signup=False)
            order = create_order(db, user=user, plan=plan)
            record_event(db, EventType.PAYMENT_SUCCEEDED, user_id=user.id, order_id=order.id, plan_id=plan.id,
                         amount_minor_units=500, currency="USD", occurred_at=day)
    db.flush()
    query = {"as_of": "2025-04-30", "window_days": 14, "horizon_days": 7, "method": "auto"}
    before = get(client, admin_headers, **query)
    assert before == get(client, admin_headers, **query)
    user = create_user(db, signup=False)
    order = create_order(db, user=user, plan=plan)
    record_event(db, EventType.PAYMENT_SUCCEEDED, user_id=user.id, order_id=order.id, plan_id=plan.id,
                 amount_minor_units=500, currency="USD", occurred_at=dt.datetime(2025, 4, 29, 23, tzinfo=dt.UTC))
    db.flush()
    after = get(client, admin_headers, **query)
    assert after["history"][-1]["revenue_minor_units"] == before["history"][-1]["revenue_minor_units"] + 500
    assert after["backtest"] != before["backtest"] or after["forecast"] != before["forecast"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("level=99", "level"), ("level=49", "level"), ("level=eighty", "level"), ("method=prophet", "method"), ("method=", "method")],
)
def test_bad_method_or_level_is_422_naming_the_field(client, admin_headers, query, field):
    response = client.get(f"{URL}?{query}", headers=admin_headers)
    assert response.status_code == 422
    assert field in str(response.json()["detail"])


def test_a_90_day_window_compares_with_the_earlier_days_since_the_first_event(client, admin_headers, db):
    # The review's case: the earlier 90-day window starts one day before the first event,
    # and the old rule answered null ("no USD revenue in the 90 days before").
    first = dt.date(2025, 6, 6)
    rows = [{"day": first + dt.timedelta(days=i), "event_type": EventType.PAYMENT_SUCCEEDED.value, "currency": "USD",
             "event_count": 1, "revenue_minor_units": 100 if i < 89 else 300} for i in range(89 + 90)]
    db.execute(insert(AnalyticsDailyTotal), rows)
    db.flush()
    as_of = first + dt.timedelta(days=89 + 90)  # history: the 90 days before; earlier: 89 days from 06-06
    body = get(client, admin_headers, as_of=as_of.isoformat(), window_days=90, horizon_days=7)
    assert body["growth_rate"] == 300 / 100 - 1  # 300 a day against 100 a day
    assert body["growth_rate_compares"]["previous"] == {"start": "2025-06-06", "end": "2025-09-02", "days": 89}
    assert body["growth_rate_compares"]["current"] == {"start": "2025-09-03", "end": "2025-12-01", "days": 90}


def test_the_server_warm_up_caches_the_dashboards_projection(client, admin_headers, four_weeks, connection, settings, monkeypatch):
    monkeypatch.setattr(bitmap_refresher, "get_settings", lambda: settings)
    forecast._project.cache_clear()
    # Its own session, as in the server; it rolls back only its savepoint here.
    with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
        bitmap_refresher.warm_projection(session, today=dt.date(2025, 3, 31))
    monkeypatch.setattr(admin_api, "utc_now", lambda: dt.datetime(2025, 3, 31, 9, tzinfo=dt.UTC))
    # The dashboard's request (method=auto) and the API's default method: revenue, signups, payments each cached.
    for method in ("auto", "moving_average"):
        before = forecast._project.cache_info()
        get(client, admin_headers, method=method)
        after = forecast._project.cache_info()
        assert (after.hits - before.hits, after.misses - before.misses) == (3, 0)


@pytest.mark.parametrize("method", ["moving_average", "seasonal_naive", "ets", "auto"])
def test_an_empty_shop_has_not_enough_data_for_any_method(client, admin_headers, method):
    body = get(client, admin_headers, method=method, as_of="2025-03-31")
    assert (body["note"], body["forecast"], body["totals"], body["backtest"], body["growth_rate"]) == ("Not enough data", [], None, None, None)
    assert len(body["history"]) == 14 and body["last_complete_day"] == "2025-03-30"
