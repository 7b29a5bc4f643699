"""The funnel from ClickHouse: hand-checked cases on chDB, then parity with the SQL engine on every target.

The parity test writes the oracle's random histories (tests/test_funnel_oracle.py, whose SQL
answers are checked against a plain-Python model), with sub-second times added, ships them
to each ClickHouse target, and asks GET /admin/analytics/funnel of both engines at one
pinned instant: the JSON must be equal field for field except `engine`, `fresh_as_of` and
`source` (which path answered: the SQL engine's two paths name themselves differently too).
"""

import datetime as dt
import os
import secrets
from unittest import mock

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.api.deps import get_db, unit_of_work
from app.api.report_source import plan_names
from app.main import app
from app.models.user import AuthSession, User
from app.services.auth import token_hash
from app.services.clickhouse_engine import ClickHouseEngine
from app.services.clickhouse_funnel import ClickHouseFunnelEngine
from app.services.funnel_query import FunnelQuery, SqlFunnelEngine
from tests.factories import create_plan
from tests.funnel_helpers import History, at, column, counts
from tests.test_funnel_oracle import BASE, _write, queries
from tests.warehouse_support import TARGETS, engine_settings, fresh_warehouse, target_config

ENGINE_FIELDS = ("engine", "fresh_as_of", "source")


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


# Parity through the endpoint on every target ------------------------------------------------

# The oracle's histories (seconds from BASE), each step mostly shortly after the one before:
# same instants, window edges to the microsecond, steps out of order and missing ones.
starts = st.one_of(st.sampled_from([0, 86_399.5, 86_400, 7 * 86_400]), st.integers(0, 20 * 86_400))
steps_after = st.one_of(
    st.sampled_from([0, 0.000001, 1, 86_400, 86_400.000001, 2 * 86_400, 7 * 86_400, 14 * 86_400 + 1]),
    st.integers(-3_600, 3 * 86_400),
    st.builds(lambda s, us: s + us / 1e6, st.integers(-2, 86_400), st.integers(0, 999_999)),
    st.none(),
)


@st.composite
def histories(draw):
    users = []
    for _ in range(draw(st.integers(1, 8))):
        signup = draw(st.one_of(starts, starts, st.none()))
        base = signup if signup is not None else draw(starts)

        def after(moment):
            step = draw(steps_after)
            return None if step is None or moment is None else max(0, moment + step)

        orders = []
        for _ in range(draw(st.integers(0, 3))):
            checkout = after(base)
            paid = after(checkout if checkout is not None else base)
            orders.append((checkout, paid, after(paid), draw(st.integers(0, 2))))
        users.append((signup, after(base), draw(st.booleans()), orders))
    return users


# The oracle's queries over more of the histories' days; steps=verified (the SQL engine answers it) now and then.
funnel_queries = queries.flatmap(lambda q: st.fixed_dictionaries({
    **{name: st.just(value) for name, value in q.items()},
    "start": st.integers(-2, 5), "length": st.integers(3, 30), "verified": st.sampled_from([False, False, False, True]),
}))


def funnel_params(q: dict) -> dict:
    start = BASE.date() + dt.timedelta(days=q["start"])
    params = {
        "start_date": start.isoformat(), "end_date": (start + dt.timedelta(days=q["length"] - 1)).isoformat(),
        "by": q["by"], "window_days": q["window"], "tz": q["tz"], "exclude_internal": str(q["exclude"]).lower(),
    }
    if q["breakdown"]:
        params["breakdown"] = q["breakdown"]
    if q["verified"] and q["by"] == "user":
        params["steps"] = "verified"
    return params


def admin_headers(session: Session) -> dict:
    admin = User(email=f"parity-admin-{secrets.token_hex(4)}@shop.test", is_admin=True)
    session.add(admin)
    session.flush()
    token = secrets.token_urlsafe(32)
    session.add(AuthSession(user_id=admin.id, token_hash=token_hash(token), expires_at=dt.datetime(2999, 1, 1, tzinfo=dt.UTC)))
    session.flush()
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("target", TARGETS)
def test_funnel_from_clickhouse_equals_the_sql_engine(engine, target):
    url, cluster = target_config(target)

    @settings(max_examples=int(os.environ.get("PARITY_EXAMPLES", "15")), deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(history=histories(), q=funnel_queries, direct=st.booleans(), shuffle_seed=st.integers(0, 1000),
           catch_up_at=st.tuples(st.integers(-1, 20), st.integers(1, 30)))
    def compare(history, q, direct, shuffle_seed, catch_up_at):
        with engine.connect() as connection:
            transaction = connection.begin()
            session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
            try:
                _write(session, history, direct, shuffle_seed, catch_up_at)
                # The oracle's internal users are @team.test: admins here, so exclude_internal leaves them out.
                session.execute(update(User).where(User.email.like("%@team.test")).values(is_admin=True))
                headers = admin_headers(session)
                warehouse = fresh_warehouse(url, cluster)
                warehouse.sync(connection)

                def request_db():
                    yield from unit_of_work(Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False))

                app.dependency_overrides[get_db] = request_db
                client = TestClient(app)
                now = BASE + dt.timedelta(seconds=q["now"])
                # The drawn query, and the same in UTC without a breakdown (the SQL engine's rollup path).
                for params in (funnel_params(q), funnel_params({**q, "tz": "UTC", "breakdown": None})):
                    with mock.patch("app.api.funnel.utc_now", return_value=now):
                        sql = client.get("/admin/analytics/funnel", params=params, headers=headers)
                        with engine_settings(analytics_engine="clickhouse", clickhouse_url=url, clickhouse_cluster=cluster):
                            warehouse_answer = client.get("/admin/analytics/funnel", params=params, headers=headers)
                    assert sql.status_code == warehouse_answer.status_code == 200, warehouse_answer.text
                    body, expected = warehouse_answer.json(), sql.json()
                    assert (expected["engine"], expected["fresh_as_of"]) == ("sql", None)
                    if "steps" in params:  # verified times live in the shop's database: the SQL engine answers
                        assert body["engine"] == "sql" and body["fresh_as_of"] is None
                    else:
                        assert (body["engine"], body["source"]) == ("clickhouse", "clickhouse")
                        assert dt.datetime.fromisoformat(body["fresh_as_of"]) == warehouse.cursor().caught_up_at
                    assert {k: v for k, v in body.items() if k not in ENGINE_FIELDS} == {
                        k: v for k, v in expected.items() if k not in ENGINE_FIELDS
                    }
            finally:
                app.dependency_overrides.pop(get_db, None)
                session.close()
                transaction.rollback()

    compare()


UNREACHABLE = "clickhouse://default@127.0.0.1:1/nowhere"


def test_funnel_with_clickhouse_unreachable_answers_503_or_falls_back(client, db):
    headers = admin_headers(db)
    with engine_settings(analytics_engine="clickhouse", clickhouse_url=UNREACHABLE, clickhouse_cluster=""):
        response = client.get("/admin/analytics/funnel", headers=headers)
        assert response.status_code == 503
        assert "ClickHouse at 127.0.0.1:1) is unreachable" in response.json()["detail"]
        # steps=verified never asks ClickHouse
        assert client.get("/admin/analytics/funnel", params={"steps": "verified"}, headers=headers).json()["engine"] == "sql"
    with engine_settings(analytics_engine="clickhouse", clickhouse_url=UNREACHABLE, analytics_engine_fallback="sql"):
        response = client.get("/admin/analytics/funnel", headers=headers)
    assert response.status_code == 200
    assert (response.json()["engine"], response.json()["fresh_as_of"], response.json()["source"]) == ("sql", None, "rollup")
