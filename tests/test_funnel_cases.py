"""PostHog's funnel acceptance cases (shared/notes/funnel-analytics.md §2) on our four steps, values by hand."""

import datetime as dt

import pytest

from app.services.funnel_query import FunnelQuery, SqlFunnelEngine
from tests.funnel_helpers import History, at, column, counts, funnel


@pytest.fixture
def h(db):
    return History(db)


def test_basic_and_wrong_order(db, h):
    """Case 1: A signs up; B checks out; C pays; D has no signup; E's checkout and payment precede its signup."""
    h.user("2026-11-02 10:00")
    h.order(h.user("2026-11-02 10:00"), "2026-11-02 10:30")
    h.order(h.user("2026-11-02 10:00"), "2026-11-02 11:00", "2026-11-02 11:05")
    h.order(h.user(None), "2026-11-02 10:00", "2026-11-02 10:01", "2026-11-02 10:02")
    h.order(h.user("2026-11-02 12:00"), "2026-11-02 11:00", "2026-11-02 11:30", "2026-11-02 12:30")
    result = funnel(db, "2026-11-01", "2026-11-30")
    assert counts(result) == [4, 2, 1, 0]
    assert column(result, "conversion_from_previous") == [1.0, 0.5, 0.5, 0.0]
    assert column(result, "conversion_from_start") == [1.0, 0.5, 0.25, 0.0]
    assert column(result, "dropped") == [0, 2, 1, 1]
    assert column(result, "in_progress") == [0, 0, 0, 0]
    # step 2 gaps: B 1800 s, C 3600 s -> nearest rank p50 = rank 1, p90 = rank 2
    assert column(result, "median_seconds") == [None, 1800.0, 300.0, None]
    assert column(result, "p90_seconds") == [None, 3600.0, 300.0, None]

    orders = funnel(db, "2026-11-01", "2026-11-30", by="order")
    # orders of B, C, D, E; paid: C (300 s), D (60 s), E (1800 s); activated: D (60 s), E (3600 s)
    assert counts(orders) == [4, 3, 2]
    assert column(orders, "median_seconds") == [None, 300.0, 60.0]
    assert column(orders, "p90_seconds") == [None, 1800.0, 3600.0]


def test_skipped_step_does_not_count(db, h):
    """Case 2: an activation without a payment is not step 4."""
    h.order(h.user("2026-11-02 10:00"), "2026-11-02 10:10", None, "2026-11-02 10:20")
    assert counts(funnel(db, "2026-11-02", "2026-11-02")) == [1, 1, 0, 0]
    assert counts(funnel(db, "2026-11-02", "2026-11-02", by="order")) == [1, 0, 0]


def test_window_edges_in_seconds(db, h):
    """Cases 3-5: the window runs from the signup and is inclusive, to the microsecond."""
    h.order(h.user("2026-11-02 10:00"), "2026-11-03 10:00")  # exactly 86 400 s
    h.order(h.user("2026-11-02 10:00"), "2026-11-03 10:00:01")  # 86 401 s
    h.order(h.user("2026-11-02 10:00"), "2026-11-03 10:00:00.000001")
    h.order(h.user("2026-11-02 10:00"), "2026-11-10 10:00")  # 8 days
    one = funnel(db, "2026-11-02", "2026-11-02", window_days=1)
    assert counts(one) == [4, 1, 0, 0]
    assert column(one, "median_seconds")[1] == 86400.0
    assert counts(funnel(db, "2026-11-02", "2026-11-02", window_days=2)) == [4, 3, 0, 0]
    assert counts(funnel(db, "2026-11-02", "2026-11-02", window_days=8)) == [4, 4, 0, 0]
    # default window 14 days
    assert counts(funnel(db, "2026-11-02", "2026-11-02")) == [4, 4, 0, 0]


def test_window_is_measured_from_entry_not_from_previous_step(db, h):
    """Payment 1 day after a checkout that came 1 day after signup: 2 days from the entry."""
    h.order(h.user("2026-11-02 10:00"), "2026-11-03 09:00", "2026-11-04 09:00")
    assert counts(funnel(db, "2026-11-02", "2026-11-02", window_days=1)) == [1, 1, 0, 0]
    assert counts(funnel(db, "2026-11-02", "2026-11-02", window_days=2)) == [1, 1, 1, 0]


def test_same_timestamp_counts_in_step_order(db, h):
    """Case 9: signup, checkout, payment and activation in the same instant all convert, gaps 0."""
    h.order(h.user("2026-11-02 10:00"), "2026-11-02 10:00", "2026-11-02 10:00", "2026-11-02 10:00")
    result = funnel(db, "2026-11-02", "2026-11-02")
    assert counts(result) == [1, 1, 1, 1]
    assert column(result, "median_seconds") == [None, 0.0, 0.0, 0.0]


def test_repeat_steps_count_people_once(db, h):
    """Cases 6, 10: three checkouts in one second and a later one are one person; the first checkout is step 2."""
    user = h.user("2026-11-02 10:00")
    for _ in range(3):
        h.order(user, "2026-11-02 11:00")
    h.order(user, "2026-11-02 12:00", "2026-11-02 13:00")
    result = funnel(db, "2026-11-02", "2026-11-02")
    assert counts(result) == [1, 1, 1, 0]
    # step 3 gap: payment 13:00 - first checkout 11:00
    assert column(result, "median_seconds") == [None, 3600.0, 7200.0, None]
    orders = funnel(db, "2026-11-02", "2026-11-02", by="order")
    assert counts(orders) == [4, 1, 0]


def test_late_insert_recomputes_the_entrant(db, h):
    """Events recorded out of order (payment before its checkout) give the rows a rebuild would."""
    from app.models.analytics import EventType
    from app.services.analytics import record_event
    from app.services.funnel_rebuild import rebuild_funnel
    from tests.funnel_helpers import at

    user = h.user("2026-11-02 10:00")
    order = h.order(user, None)
    common = {"user_id": user.id, "order_id": order.id, "plan_id": h.plan.id, "currency": "JPY"}
    record_event(db, EventType.PAYMENT_SUCCEEDED, **common, amount_minor_units=1500, occurred_at=at("2026-11-02 12:00"))
    assert counts(funnel(db, "2026-11-02", "2026-11-02")) == [1, 0, 0, 0]
    record_event(db, EventType.CHECKOUT_STARTED, **common, occurred_at=at("2026-11-02 11:00"))
    live = funnel(db, "2026-11-02", "2026-11-02")
    assert counts(live) == [1, 1, 1, 0]
    rebuild_funnel(db)
    assert funnel(db, "2026-11-02", "2026-11-02").funnel == live.funnel


def test_dst_inside_the_window(db, h):
    """Case 17: 14 days minus 43 minutes across the US spring-forward still converts, 1 207 020 s in any zone."""
    h.order(h.user("2024-03-01 15:10"), "2024-03-15 14:27")
    for tz in ("UTC", "America/Los_Angeles"):
        result = funnel(db, "2024-03-01", "2024-03-01", tz=tz, now="2024-06-01 00:00")
        assert counts(result) == [1, 1, 0, 0]
        assert column(result, "median_seconds")[1] == 1_207_020.0


def test_local_days_of_the_zone_pick_the_entrants(db, h):
    """Case 16: 01:00Z on Jan 1 is Dec 31 in Los Angeles; 20:00Z is Jan 2 in Tokyo."""
    h.user("2020-01-01 01:00")
    h.user("2020-01-01 20:00")
    assert counts(funnel(db, "2020-01-01", "2020-01-01", now="2020-03-01 00:00"))[0] == 2
    assert counts(funnel(db, "2020-01-01", "2020-01-01", tz="America/Los_Angeles", now="2020-03-01 00:00"))[0] == 1
    assert counts(funnel(db, "2019-12-31", "2019-12-31", tz="America/Los_Angeles", now="2020-03-01 00:00"))[0] == 1
    assert counts(funnel(db, "2020-01-01", "2020-01-01", tz="Asia/Tokyo", now="2020-03-01 00:00"))[0] == 1
    assert counts(funnel(db, "2020-01-02", "2020-01-02", tz="Asia/Tokyo", now="2020-03-01 00:00"))[0] == 1


def test_breakdown_uses_the_first_checkout_in_the_window(db, h):
    """Case 19/20: attribution to the first checkout; after the window or none: "(none)"."""
    from tests.factories import create_plan

    europe = create_plan(db, name="Europe 10 GB", region="Europe", currency="EUR")
    first = h.user("2026-11-02 10:00")
    h.order(first, "2026-11-02 11:00")  # Japan first
    h.order(first, "2026-11-02 12:00", "2026-11-02 12:30", plan=europe)
    h.order(h.user("2026-11-02 10:00"), "2026-11-02 11:00", "2026-11-02 11:10", plan=europe)
    h.user("2026-11-02 10:00")
    h.order(h.user("2026-11-02 10:00"), "2026-11-05 10:00", plan=europe)  # 3 days later
    result = funnel(db, "2026-11-02", "2026-11-02", breakdown="plan")
    by_value = {s.value: [st.count for st in s.steps] for s in result.breakdowns}
    assert by_value == {"(none)": [1, 0, 0, 0], "Europe 10 GB": [2, 2, 1, 0], "Japan 5 GB": [1, 1, 1, 0]}
    assert [s.value for s in result.breakdowns] == ["Europe 10 GB", "(none)", "Japan 5 GB"]
    short = funnel(db, "2026-11-02", "2026-11-02", breakdown="plan", window_days=2)
    assert {s.value: s.entrants for s in short.breakdowns} == {"(none)": 2, "Europe 10 GB": 1, "Japan 5 GB": 1}
    regions = funnel(db, "2026-11-02", "2026-11-02", breakdown="currency", window_days=1)
    assert {s.value: [st.count for st in s.steps] for s in regions.breakdowns} == {
        "(none)": [2, 0, 0, 0], "EUR": [1, 1, 1, 0], "JPY": [1, 1, 1, 0],
    }
    # The Japan user paid 30 min after its Europe checkout, 1.5 h after its Japan one: the gap is from step 2.
    japan = next(s for s in result.breakdowns if s.value == "Japan 5 GB")
    assert japan.steps[2].median_seconds == 5400.0


@pytest.mark.parametrize("caught_up", [False, True])
def test_breakdown_top_ten_then_other(db, h, caught_up):
    from app.services.funnel_store import catch_up
    from tests.factories import create_plan

    plans = [create_plan(db, name=f"P{i:02d}", region=f"R{i:02d}") for i in range(12)]
    for i, plan in enumerate(plans):
        for _ in range(12 - i):  # P00 has 12 entrants ... P11 has 1
            h.order(h.user("2026-11-02 10:00"), "2026-11-02 10:05", plan=plan)
    while caught_up and catch_up(db):
        pass
    result = funnel(db, "2026-11-02", "2026-11-02", breakdown="region")
    assert [s.value for s in result.breakdowns] == [f"R{i:02d}" for i in range(10)] + ["Other"]
    assert result.breakdowns[-1].entrants == 2 + 1
    assert sum(s.entrants for s in result.breakdowns) == counts(result)[0] == 78


@pytest.mark.parametrize("caught_up", [False, True])
def test_plan_breakdown_from_the_value_rollup(db, h, caught_up):
    """A plan breakdown in a stored window from the value rollup: stored and queued entrants, two plans of one
    name as one value, an internal user left out, open windows by value, and attribution outside a short window."""
    from app.services.funnel_store import catch_up
    from tests.factories import create_plan

    europe = create_plan(db, name="Europe 10 GB", region="Europe", currency="EUR")
    europe_again = create_plan(db, name="Europe 10 GB", region="Europe", currency="EUR")
    h.order(h.user("2026-11-01 10:00"), "2026-11-01 10:10", "2026-11-01 10:40")  # u1 Japan: 600 s, 1800 s
    h.order(h.user("2026-11-02 09:00"), "2026-11-02 10:00", plan=europe)  # u2: 3600 s
    h.order(h.user("2026-11-03 13:00"), "2026-11-03 13:02", plan=europe_again)  # u3: 120 s, after the 7-day deadline
    h.user("2026-11-05 08:00")  # u4: no checkout
    team = h.user("2026-11-02 09:00", is_admin=True)  # u5: internal
    h.order(team, "2026-11-02 09:01")
    u7 = h.user("2026-11-01 08:00", verified="2026-11-01 09:00")
    h.order(u7, "2026-11-05 08:00")  # u7 Japan: 4 days after its signup
    while caught_up and catch_up(db):
        pass
    h.order(h.user("2026-11-06 08:00"), "2026-11-06 08:30", "2026-11-06 09:00")  # u6 Japan, queued: 1800 s, 1800 s
    internal = frozenset({team.id})
    common = {"now": "2026-11-10 12:00", "breakdown": "plan", "exclude_internal": True, "internal_user_ids": internal}
    week = funnel(db, "2026-11-01", "2026-11-10", window_days=7, **common)  # deadline 11-03 12:00
    assert counts(week) == [6, 5, 2, 0]
    shown = [(s.value, s.entrants, [st.count for st in s.steps]) for s in week.breakdowns]
    assert shown == [("Japan 5 GB", 3, [3, 3, 2, 0]), ("Europe 10 GB", 2, [2, 2, 0, 0]), ("(none)", 1, [1, 0, 0, 0])]
    japan, both_europe, none = week.breakdowns
    assert [st.in_progress for st in japan.steps] == [0, 0, 0, 1] and [st.dropped for st in japan.steps] == [0, 0, 1, 1]
    assert [st.median_seconds for st in japan.steps] == [None, 1800.0, 1800.0, None]
    assert [st.p90_seconds for st in japan.steps] == [None, 345600.0, 1800.0, None]
    assert [st.in_progress for st in both_europe.steps] == [0, 0, 1, 0] and [st.dropped for st in both_europe.steps] == [0, 0, 1, 0]
    assert [st.median_seconds for st in both_europe.steps] == [None, 120.0, None, None]
    assert [st.p90_seconds for st in both_europe.steps] == [None, 3600.0, None, None]
    assert [st.in_progress for st in none.steps] == [0, 1, 0, 0]
    # Three days, with the login-code step: u7's checkout is past the window, so u7 is "(none)", verified after 3600 s.
    short = funnel(db, "2026-11-01", "2026-11-10", window_days=3, with_verified=True, **common)
    shown = [(s.value, s.entrants, [st.count for st in s.steps]) for s in short.breakdowns]
    assert shown == [("(none)", 2, [2, 1, 0, 0, 0]), ("Europe 10 GB", 2, [2, 0, 0, 0, 0]), ("Japan 5 GB", 2, [2, 0, 0, 0, 0])]
    assert [st.median_seconds for st in short.breakdowns[0].steps] == [None, 3600.0, None, None, None]
    assert [st.dropped for st in short.breakdowns[0].steps] == [0, 1, 1, 0, 0]
    query = FunnelQuery(start=dt.date(2026, 11, 1), end=dt.date(2026, 11, 10), window_days=7, breakdown="plan", now=at("2026-11-10 12:00"),
                        exclude_internal=True, internal_user_ids=internal)
    assert SqlFunnelEngine().funnel(db, query).source == "rollup"
    # A window the value rollup does not keep takes the per-entrant path.
    assert SqlFunnelEngine().funnel(db, FunnelQuery(**{**query.__dict__, "window_days": 5})).source == "entrants"


def test_signup_week_breakdown_in_local_weeks(db, h):
    h.user("2026-11-01 23:30")  # Sunday in UTC, Monday 00:30 in Berlin
    h.user("2026-11-02 10:00")
    utc = funnel(db, "2026-10-26", "2026-11-08", breakdown="signup_week")
    assert {s.value: s.entrants for s in utc.breakdowns} == {"2026-10-26": 1, "2026-11-02": 1}
    berlin = funnel(db, "2026-10-26", "2026-11-08", breakdown="signup_week", tz="Europe/Berlin")
    assert {s.value: s.entrants for s in berlin.breakdowns} == {"2026-11-02": 2}
    month = funnel(db, "2026-10-26", "2026-11-08", breakdown="signup_month")
    assert {s.value: s.entrants for s in month.breakdowns} == {"2026-11": 2}


def test_signup_week_breakdown_from_the_rollups(db, h):
    """Weeks answered from the rollup rows of their days: stored and queued entrants, an internal user left out."""
    from app.services.funnel_store import catch_up

    h.order(h.user("2026-11-02 10:00"), "2026-11-02 10:10", paid="2026-11-02 10:40")  # gaps 600 s, 1800 s
    h.order(h.user("2026-11-03 09:00"), "2026-11-03 10:00")  # 3600 s
    while catch_up(db):
        pass
    h.order(h.user("2026-11-09 08:00"), "2026-11-09 08:02")  # 120 s, still queued
    team = h.user("2026-11-09 09:00", is_admin=True)
    h.order(team, "2026-11-09 09:01")
    internal = frozenset({team.id})
    result = funnel(db, "2026-11-02", "2026-11-10", breakdown="signup_week", exclude_internal=True, internal_user_ids=internal)
    first, second = result.breakdowns
    assert (first.value, first.entrants, second.value, second.entrants) == ("2026-11-02", 2, "2026-11-09", 1)
    assert [s.count for s in first.steps] == [2, 2, 1, 0] and [s.count for s in second.steps] == [1, 1, 0, 0]
    assert [s.dropped for s in first.steps] == [0, 0, 1, 1] and [s.dropped for s in second.steps] == [0, 0, 1, 0]
    assert [s.median_seconds for s in first.steps] == [None, 600.0, 1800.0, None]
    assert [s.p90_seconds for s in first.steps] == [None, 3600.0, 1800.0, None]
    assert [s.median_seconds for s in second.steps] == [None, 120.0, None, None]
    assert counts(result) == [3, 3, 1, 0]  # the range's own funnel beside them
    query = FunnelQuery(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 10), breakdown="signup_week", now=at("2026-12-02 12:00"),
                        exclude_internal=True, internal_user_ids=internal)
    fast = SqlFunnelEngine().funnel(db, query)
    assert fast.source == "rollup" and fast.breakdowns == result.breakdowns
    # A zone other than UTC and the rollups' own takes the per-entrant path (the helper compares both paths).
    tokyo = SqlFunnelEngine().funnel(db, FunnelQuery(**{**query.__dict__, "tz": "Asia/Tokyo"}))
    assert tokyo.source == "entrants"
    assert [(s.value, s.entrants) for s in tokyo.breakdowns] == [("2026-11-02", 2), ("2026-11-09", 1)]


def test_in_progress_versus_dropped_near_now(db, h):
    """Window 1 day, now 2026-12-02 12:00: a signup exactly 1 day ago is still open, one second earlier is closed."""
    h.user("2026-12-01 12:00")
    h.user("2026-12-01 11:59:59")
    h.order(h.user("2026-12-02 10:00"), "2026-12-02 10:05")
    result = funnel(db, "2026-12-01", "2026-12-02", window_days=1, now="2026-12-02 12:00")
    assert counts(result) == [3, 1, 0, 0]
    assert column(result, "in_progress") == [0, 1, 1, 0]
    assert column(result, "dropped") == [0, 1, 0, 0]


def test_percentiles_are_nearest_rank(db, h):
    """Ten gaps of 1..10 minutes: p50 = 5th value (300 s), p90 = 9th (540 s); eleven: p50 6th, p90 10th."""
    for minutes in range(1, 11):
        h.order(h.user("2026-11-02 10:00"), f"2026-11-02 10:{minutes:02d}")
    result = funnel(db, "2026-11-02", "2026-11-02")
    assert (result.funnel[1].median_seconds, result.funnel[1].p90_seconds) == (300.0, 540.0)
    h.order(h.user("2026-11-02 10:00"), "2026-11-02 10:11")
    result = funnel(db, "2026-11-02", "2026-11-02")
    assert (result.funnel[1].median_seconds, result.funnel[1].p90_seconds) == (360.0, 600.0)


def test_verified_step(db, h):
    """steps=verified: a signup that never verified its code is an entrant that stops there."""
    h.order(h.user("2026-11-02 10:00", verified="2026-11-02 10:00:30"), "2026-11-02 11:00", "2026-11-02 11:01")
    h.order(h.user("2026-11-02 10:00"), "2026-11-02 11:00")  # never verified
    h.user("2026-11-02 10:00", verified="2026-11-02 10:01")
    result = funnel(db, "2026-11-02", "2026-11-02", with_verified=True)
    assert result.steps == ["user_signup", "verified", "checkout_started", "payment_succeeded", "esim_activated"]
    assert counts(result) == [3, 2, 1, 1, 0]
    assert column(result, "median_seconds") == [None, 30.0, 3570.0, 60.0, None]
    assert counts(funnel(db, "2026-11-02", "2026-11-02")) == [3, 2, 1, 0]


def test_exclude_internal(db, h, settings, monkeypatch):
    """Admins (ADMIN_EMAILS, is_admin) and ANALYTICS_EXCLUDE_EMAILS patterns leave every step."""
    from app.services.auth import set_admin
    from app.services.internal_users import internal_user_ids

    monkeypatch.setattr(settings, "analytics_exclude_emails", "qa@shop.test, *@team.test")
    h.order(h.user("2026-11-02 10:00", email="admin@shop.test"), "2026-11-02 10:10")
    h.order(h.user("2026-11-02 10:00", email="anna@team.test"), "2026-11-02 10:20", "2026-11-02 10:30")
    h.user("2026-11-02 10:00", email="qa@shop.test")
    h.user("2026-11-02 10:00", email="root@shop.test", is_admin=True)
    h.user("2026-11-02 10:00", email="someone@steam.test")  # not *@team.test
    h.order(h.user("2026-11-02 10:00", email="buyer@shop.test"), "2026-11-02 11:00", "2026-11-02 11:30")
    everyone = funnel(db, "2026-11-02", "2026-11-02")
    assert counts(everyone) == [6, 3, 2, 0]
    internal = frozenset(internal_user_ids(db, settings))
    assert len(internal) == 4
    result = funnel(db, "2026-11-02", "2026-11-02", exclude_internal=True, internal_user_ids=internal)
    assert counts(result) == [2, 1, 1, 0]
    assert column(result, "median_seconds") == [None, 3600.0, 1800.0, None]
    set_admin(db, "buyer@shop.test", True)  # a grant-admin counts at the next report
    internal = frozenset(internal_user_ids(db, settings))
    assert counts(funnel(db, "2026-11-02", "2026-11-02", exclude_internal=True, internal_user_ids=internal)) == [1, 0, 0, 0]


def test_rollups_keyed_by_the_zone_of_the_setting(db, h, settings, monkeypatch):
    """ANALYTICS_TIMEZONE=America/New_York: its local days and months come from the rollups, as do UTC's."""
    import datetime as dt

    from app.services.funnel_query import FunnelQuery, SqlFunnelEngine
    from app.services.funnel_rebuild import rebuild_funnel
    from app.services.retention import retention
    from tests.funnel_helpers import at

    monkeypatch.setattr(settings, "analytics_timezone", "America/New_York")
    rebuild_funnel(db)  # records the zone the rollups are keyed by
    h.order(h.user("2026-11-01 03:00"), "2026-11-01 04:00", "2026-11-01 04:00")  # 31 Oct 23:00 in New York
    h.order(h.user("2026-12-01 03:00"), "2026-12-01 03:30", "2026-12-01 03:30")  # 30 Nov 22:00 in New York
    h.user("2026-11-15 12:00")
    november = funnel(db, "2026-11-01", "2026-11-30", tz="America/New_York", now="2027-01-01 00:00")
    assert counts(november) == [2, 1, 1, 0]
    assert column(november, "median_seconds") == [None, 1800.0, 0.0, None]
    utc = funnel(db, "2026-11-01", "2026-11-30", tz="UTC", now="2027-01-01 00:00")
    assert counts(utc) == [2, 1, 1, 0]
    assert column(utc, "median_seconds") == [None, 3600.0, 0.0, None]
    for tz in ("America/New_York", "UTC"):
        query = FunnelQuery(start=dt.date(2026, 11, 1), end=dt.date(2026, 11, 30), tz=tz, now=at("2027-01-01 00:00"))
        assert SqlFunnelEngine().funnel(db, query).source == "rollup"
    report = retention(db, interval="month", start=dt.date(2026, 10, 1), end=dt.date(2026, 11, 30), tz="America/New_York")
    assert report.source == "rollup"
    # Both payments are November in New York: 04:00Z on 1 Nov is midnight EDT, 03:30Z on 1 Dec is 22:30 EST on 30 Nov.
    assert [(c.cohort_start, c.size, c.retained) for c in report.cohorts] == [("2026-10-01", 0, [0]), ("2026-11-01", 2, [])]
    assert retention(db, interval="month", start=dt.date(2026, 10, 1), end=dt.date(2026, 11, 30), tz="UTC").source == "events"


@pytest.mark.parametrize("caught_up", [False, True])
def test_another_zone_from_the_rollups_whole_days_and_the_entrants_at_the_ends(db, h, caught_up):
    """Asia/Tokyo (UTC+9) 11-30..12-02 is [11-29 15:00, 12-02 15:00) UTC: UTC days 11-30 and 12-01 whole,
    a 9-hour slice before and a 15-hour slice after them."""
    from app.services.funnel_store import catch_up

    h.order(h.user("2026-11-29 16:00"), "2026-11-29 17:00")  # a: first slice, checkout after 3600 s
    h.user("2026-12-02 10:00")  # b: last slice, nothing yet
    h.order(h.user("2026-12-01 10:00"), "2026-12-01 10:30", "2026-12-01 10:40", "2026-12-01 11:00")  # c: a whole day
    h.user("2026-11-29 14:00")  # 23:00 on 11-29 in Tokyo: outside
    if caught_up:
        while catch_up(db):
            pass
    result = funnel(db, "2026-11-30", "2026-12-02", tz="Asia/Tokyo")  # now 12-02 12:00: every window open
    assert counts(result) == [3, 2, 1, 1]
    assert column(result, "in_progress") == [0, 1, 1, 0]  # b has not checked out, a has not paid
    assert column(result, "dropped") == [0, 0, 0, 0]
    assert column(result, "median_seconds") == [None, 1800.0, 600.0, 1200.0]
    assert column(result, "p90_seconds") == [None, 3600.0, 600.0, 1200.0]
