"""tz, exclude_internal and the incomplete day on the overview, the timeseries and the projections.

The figures below were worked out by hand from the timestamps (zone offsets written beside them).
"""

import datetime as dt
import secrets
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy.orm import Session

from app.models.user import AuthSession
from app.services.auth import token_hash
from app.services.dates import DayRange
from app.services.events_engine import EventsEngine, UserFilter
from tests.factories import create_plan, create_user
from tests.funnel_helpers import History, at
from tests.helpers import auth

S, C, P, A = "user_signup", "checkout_started", "payment_succeeded", "esim_activated"


def four(s=0, c=0, p=0, a=0):
    return {S: s, C: c, P: p, A: a}


@pytest.fixture
def admin_headers(db):
    admin = create_user(db, email="scope-admin@shop.test", is_admin=True, signup=False)
    token = secrets.token_urlsafe(32)
    db.add(AuthSession(user_id=admin.id, token_hash=token_hash(token), created_at=at("2025-01-01 00:00"), expires_at=at("2999-01-01 00:00")))
    db.flush()
    return auth(token)


@pytest.fixture
def march(db, settings, monkeypatch):
    """Two outside users, an admin (internal) and a *@team.test user (internal), around the US DST start.

    America/New_York: EST (UTC-5) until 2025-03-09 07:00 UTC, EDT (UTC-4) after.
    Europe/Berlin: CET (UTC+1) all of March before the 30th.
    """
    monkeypatch.setattr(settings, "analytics_exclude_emails", "*@team.test")
    h = History(db)
    usd = create_plan(db, name="USA 10 GB", region="Americas", currency="USD", price_minor_units=2000)
    u1 = h.user("2025-03-08 23:30")  # NY 03-08 18:30, Berlin 03-09 00:30
    u2 = h.user("2025-03-09 05:00")  # NY 03-09 00:00 (EST), Berlin 03-09 06:00
    h.order(u2, "2025-03-10 03:59", "2025-03-10 04:00")  # NY 03-09 23:59 EDT / 03-10 00:00; Berlin 03-10
    h.order(u2, "2025-03-10 12:00")  # a second checkout, never paid
    u3 = h.user("2025-03-09 12:00", email="boss@shop.test", is_admin=True)
    h.order(u3, "2025-03-09 12:05", "2025-03-09 12:10", "2025-03-09 12:20", plan=usd)
    u4 = h.user("2025-03-10 10:00", email="qa@team.test")
    h.order(u4, "2025-03-10 10:05", "2025-03-10 10:06")
    h.user("2025-03-10 23:00")  # u5: NY 03-10 19:00, Berlin 03-11 00:00
    db.flush()
    return {"u1": u1, "u2": u2, "u3": u3, "u4": u4, "plan": h.plan, "usd": usd}


def get(client, headers, path, **params):
    response = client.get(f"/admin/analytics/{path}", params={"start_date": "2025-03-09", "end_date": "2025-03-10", **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def days_of(body):
    return {b["date"]: (b["counts"], b["revenue"]) for b in body["buckets"]}


def test_utc_and_other_zones_put_events_on_their_local_days(client, admin_headers, march):
    utc = get(client, admin_headers, "timeseries")
    assert utc["tz"] == "UTC" and utc["exclude_internal"] is False and utc["incomplete_day"] is None
    assert days_of(utc) == {
        "2025-03-09": (four(2, 1, 1, 1), {"USD": 2000}),
        "2025-03-10": (four(2, 3, 2, 0), {"JPY": 3000}),
    }
    new_york = get(client, admin_headers, "timeseries", tz="America/New_York")
    assert new_york["tz"] == "America/New_York"
    # 03-09 is a 23-hour day there: u2's signup at its first instant, u2's checkout at its last.
    assert days_of(new_york) == {
        "2025-03-09": (four(2, 2, 1, 1), {"USD": 2000}),
        "2025-03-10": (four(2, 2, 2, 0), {"JPY": 3000}),
    }
    berlin = get(client, admin_headers, "timeseries", tz="Europe/Berlin")
    assert days_of(berlin) == {  # u1 moves in (03-09 00:30), u5 out (03-11 00:00)
        "2025-03-09": (four(3, 1, 1, 1), {"USD": 2000}),
        "2025-03-10": (four(1, 3, 2, 0), {"JPY": 3000}),
    }
    assert berlin["buckets"][1]["payments_failed"] == 0 and berlin["buckets"][1]["net_revenue"] == {"JPY": 3000}


def test_the_overview_in_a_zone(client, admin_headers, march):
    body = get(client, admin_headers, "overview", tz="Europe/Berlin")
    assert body["counts"] == four(4, 4, 3, 1)
    assert body["unique_users"] == four(4, 3, 3, 1)  # u2 checked out twice
    assert body["revenue"] == {"JPY": 3000, "USD": 2000}
    assert [(p["plan_name"], p["revenue_minor_units"], p["payments"]) for p in body["top_plans"]] == [
        ("Japan 5 GB", 3000, 2), ("USA 10 GB", 2000, 1)
    ]
    # The previous period is Berlin's 03-07..03-08: [03-06 23:00, 03-08 23:00) UTC, no events.
    assert body["previous"]["counts"] == four() and body["previous"]["compares"] == "whole_days"
    assert body["payments_by_currency"] == {"JPY": 2, "USD": 1}


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin"])
def test_exclude_internal_leaves_out_admins_and_listed_emails(client, admin_headers, march, tz):
    body = get(client, admin_headers, "overview", tz=tz, exclude_internal="true")
    assert body["exclude_internal"] is True
    if tz == "UTC":  # u2 and u5 remain
        assert body["counts"] == four(2, 2, 1, 0) and body["unique_users"] == four(2, 1, 1, 0)
    else:  # u1 and u2 remain
        assert body["counts"] == four(2, 2, 1, 0) and body["unique_users"] == four(2, 1, 1, 0)
    assert body["revenue"] == {"JPY": 1500}
    assert body["payments_by_currency"] == {"JPY": 1}
    # The USD plan was bought by the admin only.
    assert [(p["plan_name"], p["revenue_minor_units"], p["payments"]) for p in body["top_plans"]] == [("Japan 5 GB", 1500, 1)]
    series = get(client, admin_headers, "timeseries", tz=tz, exclude_internal="true")
    expected = {
        "UTC": {"2025-03-09": (four(1), {}), "2025-03-10": (four(1, 2, 1), {"JPY": 1500})},
        "Europe/Berlin": {"2025-03-09": (four(2), {}), "2025-03-10": (four(0, 2, 1), {"JPY": 1500})},
    }[tz]
    assert days_of(series) == expected
    everyone = get(client, admin_headers, "overview", tz=tz)
    assert everyone["counts"][S] == 4 and everyone["exclude_internal"] is False


def test_a_free_payment_keeps_its_currency_when_an_internal_users_payment_leaves(client, admin_headers, db):
    """2025-04-02: a customer pays 0 EUR (a free plan), an admin 900 EUR: without the admin, EUR is 0, not gone."""
    h = History(db)
    free = create_plan(db, name="Europe trial", region="Europe", currency="EUR", price_minor_units=0)
    paid = create_plan(db, name="Europe 5 GB", region="Europe", currency="EUR", price_minor_units=900)
    h.order(h.user("2025-04-02 08:00"), "2025-04-02 08:05", "2025-04-02 08:06", plan=free)
    h.order(h.user("2025-04-02 09:00", email="ops@shop.test", is_admin=True), "2025-04-02 09:05", "2025-04-02 09:06", plan=paid)
    db.flush()
    days = {"start_date": "2025-04-02", "end_date": "2025-04-02"}
    assert days_of(get(client, admin_headers, "timeseries", **days))["2025-04-02"] == (four(2, 2, 2), {"EUR": 900})
    assert days_of(get(client, admin_headers, "timeseries", exclude_internal="true", **days))["2025-04-02"] == (four(1, 1, 1), {"EUR": 0})
    # Only the admin paid in EUR: the currency leaves with them.
    h.order(h.user("2025-04-03 09:00", email="ops2@shop.test", is_admin=True), "2025-04-03 09:05", "2025-04-03 09:06", plan=paid)
    db.flush()
    later = get(client, admin_headers, "timeseries", exclude_internal="true", start_date="2025-04-03", end_date="2025-04-03")
    assert days_of(later)["2025-04-03"] == (four(0, 0, 0), {})
    overview = get(client, admin_headers, "overview", exclude_internal="true", **days)
    assert overview["revenue"] == {"EUR": 0} and overview["payments_by_currency"] == {"EUR": 1}


def pin_now(monkeypatch, text):
    monkeypatch.setattr("app.api.admin.utc_now", lambda: at(text))


def test_today_is_marked_and_the_previous_period_is_cut_at_the_same_time(client, admin_headers, march, monkeypatch):
    pin_now(monkeypatch, "2025-03-10 12:30")
    body = get(client, admin_headers, "overview", start_date="2025-03-10", end_date="2025-03-10")
    assert body["incomplete_day"] == "2025-03-10"
    previous = body["previous"]
    # 03-09 before 12:30: u2's signup (05:00) and the admin's signup, checkout, payment and activation (12:00-12:20).
    assert previous["compares"] == "same_elapsed_time" and previous["cut_at"] == "2025-03-09T12:30:00Z"
    assert previous["counts"] == four(2, 1, 1, 1) and previous["revenue"] == {"USD": 2000}
    internal_out = get(client, admin_headers, "overview", start_date="2025-03-10", end_date="2025-03-10", exclude_internal="true")
    assert internal_out["previous"]["counts"] == four(1) and internal_out["previous"]["revenue"] == {}
    # At 12:10 the activation (12:20) and the payment (12:10, not before the cut) are after the cut.
    pin_now(monkeypatch, "2025-03-10 12:10")
    body = get(client, admin_headers, "overview", start_date="2025-03-10", end_date="2025-03-10")
    assert body["previous"]["counts"] == four(2, 1, 0, 0)
    series = get(client, admin_headers, "timeseries", start_date="2025-03-10", end_date="2025-03-10")
    assert series["incomplete_day"] == "2025-03-10"
    # Early in the day the cut day's part before the cut is read; late, the day less what came after: both exact.
    pin_now(monkeypatch, "2025-03-10 06:00")
    early = get(client, admin_headers, "overview", start_date="2025-03-10", end_date="2025-03-10")
    assert early["previous"]["counts"] == four(1) and early["previous"]["cut_at"] == "2025-03-09T06:00:00Z"
    pin_now(monkeypatch, "2025-03-10 23:59")
    late = get(client, admin_headers, "overview", start_date="2025-03-10", end_date="2025-03-10")
    assert late["previous"]["counts"] == four(2, 1, 1, 1) and late["previous"]["revenue"] == {"USD": 2000}


def test_today_in_another_zone(client, admin_headers, march, monkeypatch):
    # 23:45 UTC on 03-09 is 00:45 on 03-10 in Berlin: today there, and yesterday's first 45 minutes
    # ([03-08 23:00, 23:45) UTC) hold u1's signup.
    pin_now(monkeypatch, "2025-03-09 23:45")
    body = get(client, admin_headers, "overview", tz="Europe/Berlin", start_date=None, end_date=None)
    assert body["end_date"] == "2025-03-10" and body["incomplete_day"] == "2025-03-10"
    one_day = get(client, admin_headers, "overview", tz="Europe/Berlin", start_date="2025-03-10", end_date="2025-03-10")
    assert one_day["previous"]["cut_at"] == "2025-03-08T23:45:00Z"
    assert one_day["previous"]["counts"] == four(1)
    assert get(client, admin_headers, "overview", start_date="2025-03-10", end_date="2025-03-10")["incomplete_day"] is None


def test_a_25_hour_day_is_one_day(client, admin_headers, db):
    # America/New_York 2025-11-02: EDT until 06:00 UTC; local midnight 04:00 UTC, the next one 05:00 UTC on 11-03.
    h = History(db)
    for moment in ("2025-11-02 03:59", "2025-11-02 04:00", "2025-11-03 04:30", "2025-11-03 05:00"):
        h.user(moment)
    db.flush()
    body = get(client, admin_headers, "timeseries", tz="America/New_York", start_date="2025-11-01", end_date="2025-11-03")
    assert {b["date"]: b["counts"][S] for b in body["buckets"]} == {"2025-11-01": 1, "2025-11-02": 2, "2025-11-03": 1}


@pytest.mark.parametrize("path", ["overview", "timeseries", "projections"])
def test_an_unknown_zone_is_a_422_naming_tz(client, admin_headers, path):
    response = client.get(f"/admin/analytics/{path}", params={"tz": "Mars/Olympus"}, headers=admin_headers)
    assert response.status_code == 422
    assert "tz" in response.text and "Mars/Olympus" in response.text


def test_projections_in_a_zone_and_without_internal_users(client, admin_headers, march):
    params = {"as_of": "2025-03-11", "window_days": 3, "horizon_days": 1, "currency": "JPY"}
    berlin = client.get("/admin/analytics/projections", params={**params, "tz": "Europe/Berlin"}, headers=admin_headers).json()
    assert berlin["tz"] == "Europe/Berlin"
    # History 03-08..03-10 in Berlin: signups 0, 3, 1; JPY revenue 0, 0, 3000.
    assert [(h["date"], h["signups"], h["revenue_minor_units"]) for h in berlin["history"]] == [
        ("2025-03-08", 0, 0), ("2025-03-09", 3, 0), ("2025-03-10", 1, 3000)
    ]
    outside = client.get("/admin/analytics/projections", params={**params, "exclude_internal": "true"}, headers=admin_headers).json()
    # UTC days without the admin and qa@team.test: 03-08 u1; 03-09 u2; 03-10 u5 and u2's payment.
    assert [(h["signups"], h["revenue_minor_units"]) for h in outside["history"]] == [(1, 0), (1, 0), (1, 1500)]
    assert outside["exclude_internal"] is True


ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham"]
moments = st.datetimes(min_value=dt.datetime(2025, 3, 1), max_value=dt.datetime(2025, 4, 30, 23, 59, 59)).map(
    lambda m: m.replace(microsecond=0, tzinfo=dt.UTC)
)


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    signups=st.lists(st.tuples(moments, st.booleans()), min_size=1, max_size=25),
    zone=st.sampled_from(ZONES),
    first=st.integers(0, 50),
    length=st.integers(1, 12),
)
def test_local_days_match_a_plain_computation(engine, signups, zone, first, length):
    """Random signups (some by internal users) bucketed by local day in SQL equal zoneinfo's own bucketing."""
    from zoneinfo import ZoneInfo

    start = dt.date(2025, 3, 1) + dt.timedelta(days=first)
    days = DayRange(start, start + dt.timedelta(days=length - 1))
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            session = Session(bind=connection, join_transaction_mode="create_savepoint")
            h = History(session)
            internal = set()
            for moment, is_internal in signups:
                user = h.user(moment.strftime("%Y-%m-%d %H:%M:%S"))
                if is_internal:
                    internal.add(user.id)
            session.flush()
            tz = ZoneInfo(zone)
            expected, expected_outside = Counter(), Counter()
            for moment, is_internal in signups:
                local = moment.astimezone(tz).date()
                if days.start <= local <= days.end:
                    expected[local] += 1
                    expected_outside[local] += not is_internal
            expected_outside = +expected_outside  # days with outside signups only
            got = {row.day: row.counts[S] for row in EventsEngine(session, zone).daily(days, [S])}
            assert got == dict(expected)
            outside = EventsEngine(session, zone, users=UserFilter(frozenset(internal)))
            assert {row.day: row.counts[S] for row in outside.daily(days, [S]) if row.counts[S]} == dict(expected_outside)
            assert outside.totals(days).counts[S] == sum(expected_outside.values())
            assert outside.unique_users(days, [S])[S] == sum(expected_outside.values())
            session.close()
        finally:
            transaction.rollback()


def test_breakdowns_follow_the_zone_and_leave_out_internal_users(client, admin_headers, march):
    body = get(client, admin_headers, "overview", tz="Europe/Berlin", exclude_internal="true", breakdown="plan")
    values = {v["value"]: v["counts"] for v in body["breakdown"]["values"]}
    # u1, u2 signed up (no plan); u2's two Japan checkouts and one payment; the admin's USA order is out.
    assert values == {"(none)": four(2), "Japan 5 GB": four(0, 2, 1, 0)}
    series = get(client, admin_headers, "timeseries", tz="Europe/Berlin", exclude_internal="true", breakdown="plan")
    japan = next(s for s in series["series"] if s["value"] == "Japan 5 GB")
    assert [(b["date"], b["counts"][C]) for b in japan["buckets"]] == [("2025-03-09", 0), ("2025-03-10", 2)]


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    people=st.lists(
        st.tuples(moments, st.booleans(), st.none() | st.tuples(st.integers(0, 3 * 86400), st.integers(0, 1))), min_size=1, max_size=20
    ),
    zone=st.sampled_from(ZONES),
    first=st.integers(0, 50),
    length=st.integers(1, 12),
)
def test_range_figures_in_any_zone_match_a_plain_computation(engine, people, zone, first, length):
    """Rollups' whole UTC days plus the events at the ends (SpanEngine) equal a recount by local day."""
    from zoneinfo import ZoneInfo

    from app.services.span_engine import SpanEngine

    start = dt.date(2025, 3, 1) + dt.timedelta(days=first)
    days = DayRange(start, start + dt.timedelta(days=length - 1))
    tz = ZoneInfo(zone)
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            session = Session(bind=connection, join_transaction_mode="create_savepoint")
            h = History(session)
            plans = [h.plan, create_plan(session, name="Other 1 GB", region="Europe", currency="EUR", price_minor_units=700)]
            internal, facts = set(), []  # (moment, type, user id, plan index)
            for moment, is_internal, order in people:
                user = h.user(moment.strftime("%Y-%m-%d %H:%M:%S"))
                if is_internal:
                    internal.add(user.id)
                facts.append((moment, S, user.id, None))
                if order:
                    paid_at = moment + dt.timedelta(seconds=order[0])
                    text = paid_at.strftime("%Y-%m-%d %H:%M:%S")
                    h.order(user, text, text, plan=plans[order[1]])
                    facts += [(paid_at, C, user.id, order[1]), (paid_at, P, user.id, order[1])]
            session.flush()
            for excluded in (frozenset(), frozenset(internal)):
                inside = [f for f in facts if days.start <= f[0].astimezone(tz).date() <= days.end and f[2] not in excluded]
                span = SpanEngine(session, zone, excluded=excluded)
                totals = span.totals(days)
                assert totals.counts == {t: sum(1 for f in inside if f[1] == t) for t in (S, C, P, A)}
                revenue = Counter()
                for f in inside:
                    if f[1] == P:
                        revenue[plans[f[3]].currency] += plans[f[3]].price_minor_units
                assert totals.revenue == dict(sorted(revenue.items()))
                assert span.unique_users(days, [S, C, P]) == {t: len({f[2] for f in inside if f[1] == t}) for t in (S, C, P)}
                per_plan = Counter()
                for f in inside:
                    if f[1] == P:
                        per_plan[f[3]] += 1
                expected_top = sorted(
                    ((plans[i].price_minor_units * n, n, plans[i].id) for i, n in per_plan.items()), key=lambda r: (-r[0], -r[1], r[2])
                )
                assert [(r.revenue_minor_units, r.payments, r.plan_id) for r in span.top_plans(days, 10)] == expected_top
            session.close()
        finally:
            transaction.rollback()


def test_the_rollups_zone_keeps_its_local_days_in_the_business_transaction(client, admin_headers, db, settings, monkeypatch):
    """With ANALYTICS_TIMEZONE (the zone the last rebuild recorded) Europe/Berlin, record_event keeps
    Berlin days too, and the timeseries in Berlin reads them: equal to the events grouped by local day,
    and to a rebuild."""
    from sqlalchemy import delete, insert, select

    from app.models.analytics import AnalyticsLocalDailyTotal
    from app.models.funnel import RollupMeta
    from app.services import rollup_repo
    from app.services.funnel_store import ZONE_META
    from app.services.span_engine import LocalDays

    db.execute(delete(RollupMeta).where(RollupMeta.name == ZONE_META))  # a rebuild or an emptied database may have left none
    db.execute(insert(RollupMeta).values(name=ZONE_META, value="Europe/Berlin"))
    db.info.pop(ZONE_META, None)
    monkeypatch.setattr(settings, "analytics_timezone", "Europe/Berlin")
    h = History(db)
    h.order(h.user("2025-03-08 23:30"), "2025-03-09 22:59", "2025-03-09 23:00")  # Berlin: 03-09 00:30; 03-09 23:59; 03-10 00:00
    h.user("2025-03-10 23:00")  # Berlin 03-11 00:00
    db.flush()
    stored = {(r.day.isoformat(), r.event_type): r.event_count for r in db.scalars(select(AnalyticsLocalDailyTotal))}
    assert stored == {("2025-03-09", S): 1, ("2025-03-09", C): 1, ("2025-03-10", P): 1, ("2025-03-11", S): 1}
    days = DayRange(dt.date(2025, 3, 8), dt.date(2025, 3, 11))
    assert LocalDays(db).daily(days, [S, C, P]) == EventsEngine(db, "Europe/Berlin").daily(days, [S, C, P])
    body = get(client, admin_headers, "timeseries", tz="Europe/Berlin", start_date="2025-03-09", end_date="2025-03-11")
    assert [(b["date"], b["counts"][S], b["counts"][C], b["counts"][P]) for b in body["buckets"]] == [
        ("2025-03-09", 1, 1, 0), ("2025-03-10", 0, 0, 1), ("2025-03-11", 1, 0, 0)
    ]
    assert body["buckets"][1]["revenue"] == {"JPY": 1500}
    # The answer comes from the derived table: emptied, the days read zero until it is rebuilt.
    db.execute(delete(AnalyticsLocalDailyTotal))
    emptied = get(client, admin_headers, "timeseries", tz="Europe/Berlin", start_date="2025-03-09", end_date="2025-03-11")
    assert all(not any(b["counts"].values()) for b in emptied["buckets"])
    assert rollup_repo.rebuild_local_days(db) == 4
    assert get(client, admin_headers, "timeseries", tz="Europe/Berlin", start_date="2025-03-09", end_date="2025-03-11") == body
    assert {(r.day.isoformat(), r.event_type): r.event_count for r in db.scalars(select(AnalyticsLocalDailyTotal))} == stored


def test_a_changed_zone_keeps_no_local_days_until_the_rebuild(client, admin_headers, db, settings, monkeypatch):
    """ANALYTICS_TIMEZONE changed to Berlin but the last rebuild recorded UTC: nothing is kept for Berlin
    (rows of two zones would mix), and Berlin's days come from the events, still exact."""
    from sqlalchemy import delete, func, insert, select

    from app.models.analytics import AnalyticsLocalDailyTotal
    from app.models.funnel import RollupMeta
    from app.services.funnel_store import ZONE_META

    db.execute(delete(RollupMeta).where(RollupMeta.name == ZONE_META))
    db.execute(insert(RollupMeta).values(name=ZONE_META, value="UTC"))
    db.info.pop(ZONE_META, None)
    monkeypatch.setattr(settings, "analytics_timezone", "Europe/Berlin")
    History(db).user("2025-03-08 23:30")  # Berlin 03-09 00:30
    db.flush()
    assert db.scalar(select(func.count()).select_from(AnalyticsLocalDailyTotal)) == 0
    body = get(client, admin_headers, "timeseries", tz="Europe/Berlin", start_date="2025-03-08", end_date="2025-03-09")
    assert [(b["date"], b["counts"][S]) for b in body["buckets"]] == [("2025-03-08", 0), ("2025-03-09", 1)]
