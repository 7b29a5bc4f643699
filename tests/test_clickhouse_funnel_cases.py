"""The funnel and retention from ClickHouse (chDB) by hand: ties, window edges, wrong order, periods, top values; each also equals the SQL engine."""

import datetime as dt

import pytest

from app.api.report_source import plan_names
from app.services.clickhouse_engine import ClickHouseEngine
from app.services.clickhouse_funnel import ClickHouseFunnelEngine
from app.services.clickhouse_retention import clickhouse_retention
from app.services.funnel_query import FunnelQuery, SqlFunnelEngine
from app.services.retention import retention
from tests.factories import create_plan
from tests.funnel_helpers import History, at, column, counts
from tests.warehouse_support import fresh_warehouse, target_config


@pytest.fixture
def h(db):
    return History(db)


@pytest.fixture
def from_clickhouse(db):
    """The funnel of the session's events from chDB (shipped first), checked against the SQL engine."""
    url, _ = target_config("chdb")

    def answer(start: str, end: str, *, now: str = "2026-12-02 12:00", **kwargs):
        warehouse = fresh_warehouse(url, "")
        warehouse.sync(db.connection())
        query = FunnelQuery(start=dt.date.fromisoformat(start), end=dt.date.fromisoformat(end), now=at(now), **kwargs)
        result = ClickHouseFunnelEngine(ClickHouseEngine(warehouse, plan_names(db))).funnel(db, query)
        sql = SqlFunnelEngine(use_rollups=False).funnel(db, query)
        assert (result.funnel, result.breakdowns) == (sql.funnel, sql.breakdowns)
        assert (result.engine, result.source) == ("clickhouse", "clickhouse") and result.fresh_as_of is not None
        return result

    return answer


def test_same_timestamp_counts_in_step_order(h, from_clickhouse):
    h.order(h.user("2026-11-02 10:00"), "2026-11-02 10:00", "2026-11-02 10:00", "2026-11-02 10:00")
    result = from_clickhouse("2026-11-02", "2026-11-02")
    assert counts(result) == [1, 1, 1, 1]
    assert column(result, "median_seconds") == [None, 0.0, 0.0, 0.0]


def test_window_edge_to_the_second_and_the_microsecond(h, from_clickhouse):
    h.order(h.user("2026-11-02 10:00"), "2026-11-03 10:00")  # exactly 86 400 s
    h.order(h.user("2026-11-02 10:00"), "2026-11-03 10:00:01")  # 86 401 s
    h.order(h.user("2026-11-02 10:00"), "2026-11-03 10:00:00.000001")  # one microsecond past the day
    h.order(h.user("2026-11-02 10:00:00.5"), "2026-11-03 10:00:00.5")  # exactly one day, both half a second in
    one = from_clickhouse("2026-11-02", "2026-11-02", window_days=1)
    assert counts(one) == [4, 2, 0, 0]
    assert (column(one, "median_seconds")[1], column(one, "p90_seconds")[1]) == (86400.0, 86400.0)
    two = from_clickhouse("2026-11-02", "2026-11-02", window_days=2)
    assert counts(two) == [4, 4, 0, 0]
    assert (column(two, "median_seconds")[1], column(two, "p90_seconds")[1]) == (86400.0, 86401.0)


def test_wrong_order_and_orders(h, from_clickhouse):
    """A signs up; B checks out; C pays; D has no signup; E's checkout and payment precede its signup."""
    h.user("2026-11-02 10:00")
    h.order(h.user("2026-11-02 10:00"), "2026-11-02 10:30")
    h.order(h.user("2026-11-02 10:00"), "2026-11-02 11:00", "2026-11-02 11:05")
    h.order(h.user(None), "2026-11-02 10:00", "2026-11-02 10:01", "2026-11-02 10:02")
    h.order(h.user("2026-11-02 12:00"), "2026-11-02 11:00", "2026-11-02 11:30", "2026-11-02 12:30")
    users = from_clickhouse("2026-11-01", "2026-11-30")
    assert counts(users) == [4, 2, 1, 0]
    assert column(users, "dropped") == [0, 2, 1, 1]
    assert column(users, "median_seconds") == [None, 1800.0, 300.0, None]
    assert column(users, "p90_seconds") == [None, 3600.0, 300.0, None]
    orders = from_clickhouse("2026-11-01", "2026-11-30", by="order")
    assert counts(orders) == [4, 3, 2]
    assert column(orders, "median_seconds") == [None, 300.0, 60.0]
    assert column(orders, "p90_seconds") == [None, 1800.0, 3600.0]


def test_in_progress_while_the_window_is_open(h, from_clickhouse):
    h.order(h.user("2026-11-20 10:00"), "2026-11-20 11:00")  # window open at now: in progress at step 3
    h.order(h.user("2026-11-02 10:00"), "2026-11-02 11:00")  # window closed: dropped
    result = from_clickhouse("2026-11-01", "2026-11-30", now="2026-11-25 12:00", window_days=7)
    assert column(result, "in_progress") == [0, 0, 1, 0]
    assert column(result, "dropped") == [0, 0, 1, 0]


def test_ties_at_one_instant_attribute_the_lower_order_id(h, db, from_clickhouse):
    """Two checkouts in the same microsecond: the lower order id is the user's first (`_chain`)."""
    europe = create_plan(db, name="Europe 10 GB", region="Europe", currency="EUR")
    user = h.user("2026-11-02 10:00")
    h.order(user, "2026-11-02 11:00:00.25", plan=europe)
    h.order(user, "2026-11-02 11:00:00.25")
    h.user("2026-11-02 10:00")  # no checkout: (none)
    late = h.user("2026-11-02 10:00")
    h.order(late, "2026-11-20 10:00", plan=europe)  # beyond the window: (none) too
    result = from_clickhouse("2026-11-02", "2026-11-02", breakdown="plan")
    assert [(s.value, s.entrants) for s in result.breakdowns] == [("(none)", 2), ("Europe 10 GB", 1)]
    region = from_clickhouse("2026-11-02", "2026-11-02", breakdown="region")
    assert [(s.value, s.entrants) for s in region.breakdowns] == [("(none)", 2), ("Europe", 1)]


def test_top_ten_values_then_other(h, db, from_clickhouse):
    plans = [create_plan(db, name=f"Plan {i:02}", region=f"Region {i % 3}", currency="USD") for i in range(12)]
    for i, plan in enumerate(plans):
        for _ in range(1 + (i == 0)):  # Plan 00 leads with two entrants, the rest tie and go by name
            h.order(h.user("2026-11-02 10:00"), "2026-11-02 10:05", "2026-11-02 10:06", plan=plan)
    result = from_clickhouse("2026-11-02", "2026-11-02", breakdown="plan")
    assert [(s.value, s.entrants) for s in result.breakdowns] == [
        ("Plan 00", 2), *((f"Plan {i:02}", 1) for i in range(1, 10)), ("Other", 2)
    ]
    assert counts(result) == [13, 13, 13, 0]


def test_local_days_and_periods_across_the_dst_change(h, from_clickhouse):
    """New York leaves DST on 2026-11-01 at 02:00 local (06:00 UTC)."""
    h.order(h.user("2026-10-31 03:59:59.9"), "2026-11-01 04:30")  # 23:59:59.9 on 30 Oct in New York: not in the range
    h.order(h.user("2026-10-31 04:00"), "2026-11-01 04:30")  # 00:00 on 31 Oct (EDT): October
    h.order(h.user("2026-11-02 04:59:59"), "2026-11-02 05:00")  # 23:59:59 on 1 Nov (EST): November
    h.user("2026-11-02 05:00")  # 00:00 on 2 Nov: not in the range
    months = from_clickhouse("2026-10-31", "2026-11-01", breakdown="signup_month", tz="America/New_York")
    assert [(s.value, s.entrants) for s in months.breakdowns] == [("2026-10", 1), ("2026-11", 1)]
    weeks = from_clickhouse("2026-10-31", "2026-11-01", breakdown="signup_week", tz="America/New_York", by="order")
    assert [(s.value, s.entrants) for s in weeks.breakdowns] == [("2026-10-26", 2)]  # both checkouts on Sunday 1 Nov


def test_internal_users_are_left_out_by_user_and_by_order(h, from_clickhouse):
    staff = h.user("2026-11-02 10:00", is_admin=True)
    h.order(staff, "2026-11-02 10:10", "2026-11-02 10:20")
    h.order(h.user("2026-11-02 10:00"), "2026-11-02 10:30")
    internal = frozenset({staff.id})
    assert counts(from_clickhouse("2026-11-02", "2026-11-02", exclude_internal=True, internal_user_ids=internal)) == [1, 1, 0, 0]
    assert counts(from_clickhouse("2026-11-02", "2026-11-02", by="order", exclude_internal=True, internal_user_ids=internal)) == [1, 0, 0]


def test_retention_cohorts_by_first_payment(h, db):
    """A pays in weeks 1 and 3 (Berlin's Monday 00:30 is Sunday in UTC); B first paid before the range; C once."""
    a, b, c = h.user(None), h.user(None), h.user(None)
    h.order(a, "2026-11-01 23:30", "2026-11-01 23:30")  # Monday 2 Nov 00:30 in Berlin: week of 2 Nov
    h.order(a, "2026-11-17 10:00", "2026-11-17 10:00")
    h.order(b, "2026-10-20 10:00", "2026-10-20 10:00")
    h.order(b, "2026-11-03 10:00", "2026-11-03 10:00")
    h.order(c, "2026-11-10 10:00", "2026-11-10 10:00")
    warehouse = fresh_warehouse(target_config("chdb")[0], "")
    warehouse.sync(db.connection())
    scope = dict(interval="week", start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 22), tz="Europe/Berlin")
    result = clickhouse_retention(ClickHouseEngine(warehouse, plan_names(db)), **scope)
    assert [(r.cohort_start, r.size, r.retained) for r in result.cohorts] == [
        ("2026-11-02", 1, [0, 1]), ("2026-11-09", 1, [0]), ("2026-11-16", 0, []),
    ]
    assert (result.engine, result.source) == ("clickhouse", "clickhouse")
    assert result.cohorts == retention(db, **scope).cohorts
