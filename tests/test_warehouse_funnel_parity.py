"""Parity: the funnel and retention from ClickHouse equal the SQL engine's, on every target.

The test writes the oracle's random histories (tests/test_funnel_oracle.py, whose SQL
answers are checked against a plain-Python model), with sub-second times added, ships them
to each ClickHouse target, and asks GET /admin/analytics/funnel (at one pinned instant) and
/retention of both engines: the JSON must be equal field for field except `engine`,
`fresh_as_of` and `source` (which path answered: the SQL engine's paths are named too).
Hand-checked funnel cases on chDB: tests/test_clickhouse_funnel_cases.py.
"""

import datetime as dt
import os
import secrets
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.api.deps import get_db
from app.main import app
from app.models.user import AuthSession, User
from app.services.auth import token_hash
from tests.test_funnel_oracle import BASE, _write, queries
from tests.warehouse_support import client_on, TARGETS, engine_settings, fresh_warehouse, target_config

ENGINE_FIELDS = ("engine", "fresh_as_of", "source")

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


def report_requests(q: dict) -> list[tuple[str, dict]]:
    funnel, utc = funnel_params(q), funnel_params({**q, "tz": "UTC", "breakdown": None})
    retention = {name: funnel[name] for name in ("start_date", "end_date", "tz", "exclude_internal")} | {"interval": q["interval"]}
    return [("/admin/analytics/funnel", funnel), ("/admin/analytics/funnel", utc), ("/admin/analytics/retention", retention)]


def admin_headers(session: Session) -> dict:
    admin = User(email=f"parity-admin-{secrets.token_hex(4)}@shop.test", is_admin=True)
    session.add(admin)
    session.flush()
    token = secrets.token_urlsafe(32)
    session.add(AuthSession(user_id=admin.id, token_hash=token_hash(token), expires_at=dt.datetime(2999, 1, 1, tzinfo=dt.UTC)))
    session.flush()
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("target", TARGETS)
def test_funnel_and_retention_from_clickhouse_equal_the_sql_engine(engine, target):
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
                client = client_on(connection)
                now = BASE + dt.timedelta(seconds=q["now"])
                # The drawn query, the same in UTC without a breakdown (the SQL engine's rollup path), and retention.
                for path, params in report_requests(q):
                    with mock.patch("app.api.funnel.utc_now", return_value=now):
                        sql = client.get(path, params=params, headers=headers)
                        with engine_settings(analytics_engine="clickhouse", clickhouse_url=url, clickhouse_cluster=cluster):
                            warehouse_answer = client.get(path, params=params, headers=headers)
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
        for path in ("funnel", "retention"):
            response = client.get(f"/admin/analytics/{path}", headers=headers)
            assert response.status_code == 503
            assert "ClickHouse at 127.0.0.1:1) is unreachable" in response.json()["detail"]
        # steps=verified never asks ClickHouse
        assert client.get("/admin/analytics/funnel", params={"steps": "verified"}, headers=headers).json()["engine"] == "sql"
    with engine_settings(analytics_engine="clickhouse", clickhouse_url=UNREACHABLE, analytics_engine_fallback="sql"):
        response = client.get("/admin/analytics/funnel", headers=headers)
    assert response.status_code == 200
    assert (response.json()["engine"], response.json()["fresh_as_of"], response.json()["source"]) == ("sql", None, "rollup")
