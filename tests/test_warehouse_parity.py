"""Parity: every admin report answers the same from ClickHouse as from the SQL engine.

The property test's random events and ranges (tests/test_analytics_property.py, whose SQL
answers are checked against a plain-Python count) are shipped to each ClickHouse target
and every response must be equal field for field, unique users included; only `engine`
and `fresh_as_of` differ. Then: ClickHouse unreachable answers 503, or the SQL engine
with ANALYTICS_ENGINE_FALLBACK=sql.
"""

import datetime as dt
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.api.deps import get_db
from app.main import app
from app.models.user import User
from tests.test_analytics import admin_headers  # noqa: F401  (fixture)
from tests.test_analytics_property import CURRENCIES, FIRST_DAY, TYPES, day_offsets, events_strategy, lengths, seed
from tests.warehouse_support import client_on, TARGETS, engine_settings, fresh_warehouse, target_config

FRESH = ("engine", "fresh_as_of")


def without_engine(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in FRESH}


SCOPES = st.fixed_dictionaries({
    "tz": st.sampled_from([None, "UTC", "Europe/Berlin", "America/New_York"]),
    "exclude_internal": st.booleans(),
    "interval": st.sampled_from(["day", "week", "month"]),
    "breakdown": st.sampled_from([None, "plan", "currency", "signup_week"]),
})


def report_requests(
    start_offset: int, length: int, types: list[str] | None, as_of_offset: int, window: int, horizon: int, currency: str,
    scope: dict | None = None,
):
    start = FIRST_DAY + dt.timedelta(days=start_offset)
    params = [("start_date", start.isoformat()), ("end_date", (start + dt.timedelta(days=length - 1)).isoformat())]
    params += [("event_types", t) for t in types or []]
    scope = scope or {}
    shared = [(k, str(scope[k]).lower() if k == "exclude_internal" else scope[k]) for k in ("tz", "exclude_internal") if scope.get(k) is not None]
    params += shared + ([("breakdown", scope["breakdown"])] if scope.get("breakdown") else [])
    series = params + ([("interval", scope["interval"])] if scope.get("interval") else [])
    projection = {"as_of": (FIRST_DAY + dt.timedelta(days=as_of_offset)).isoformat(), "window_days": window,
                  "horizon_days": horizon, "currency": currency}
    return [
        ("/admin/analytics/overview", params),
        ("/admin/analytics/timeseries", series),
        ("/admin/analytics/timeseries", [*series, ("format", "csv")]),
        ("/admin/analytics/projections", [*projection.items(), *shared]),
    ]


@pytest.mark.parametrize("target", TARGETS)
def test_reports_from_clickhouse_equal_the_sql_engine(engine, target):
    url, cluster = target_config(target)

    @settings(max_examples=int(os.environ.get("PARITY_EXAMPLES", "6")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(
        events=events_strategy,
        start_offset=day_offsets,
        length=lengths,
        types=st.one_of(st.none(), st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True)),
        as_of_offset=st.integers(0, 100),
        window=st.integers(3, 20),
        horizon=st.integers(1, 10),
        currency=st.sampled_from(CURRENCIES),
        scope=SCOPES,
    )
    def compare(events, start_offset, length, types, as_of_offset, window, horizon, currency, scope):
        with engine.connect() as connection:
            transaction = connection.begin()
            session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
            try:
                headers, _ = seed(session, events)
                # The first seeded user is an admin too: exclude_internal then takes their events away.
                first = session.scalar(select(User.id).order_by(User.id).limit(1))
                session.execute(update(User).where(User.id == first).values(is_admin=True))
                warehouse = fresh_warehouse(url, cluster)
                warehouse.sync(connection)
                client = client_on(connection)
                for path, params in report_requests(start_offset, length, types, as_of_offset, window, horizon, currency, scope):
                    sql = client.get(path, params=params, headers=headers)
                    with engine_settings(analytics_engine="clickhouse", clickhouse_url=url, clickhouse_cluster=cluster):
                        warehouse_answer = client.get(path, params=params, headers=headers)
                    assert sql.status_code == warehouse_answer.status_code == 200, warehouse_answer.text
                    if path.endswith("timeseries") and ("format", "csv") in params:
                        assert warehouse_answer.text == sql.text
                        continue
                    body = warehouse_answer.json()
                    assert body["engine"] == "clickhouse" and sql.json()["engine"] == "sql"
                    assert dt.datetime.fromisoformat(body["fresh_as_of"]) == warehouse.cursor().caught_up_at
                    assert without_engine(body) == without_engine(sql.json())
            finally:
                app.dependency_overrides.pop(get_db, None)
                session.close()
                transaction.rollback()

    compare()


UNREACHABLE = "clickhouse://default@127.0.0.1:1/nowhere"  # port 1: connection refused at once


def test_clickhouse_unreachable_answers_503_saying_so(client, admin_headers):
    with engine_settings(analytics_engine="clickhouse", clickhouse_url=UNREACHABLE, clickhouse_cluster=""):
        for path in ("overview", "timeseries", "projections"):
            response = client.get(f"/admin/analytics/{path}", headers=admin_headers)
            assert response.status_code == 503
            assert "ClickHouse at 127.0.0.1:1) is unreachable" in response.json()["detail"]


def test_clickhouse_unreachable_falls_back_to_sql_when_asked(client, admin_headers):
    with engine_settings(analytics_engine="clickhouse", clickhouse_url=UNREACHABLE, analytics_engine_fallback="sql"):
        response = client.get("/admin/analytics/overview", headers=admin_headers)
    assert response.status_code == 200
    assert (response.json()["engine"], response.json()["fresh_as_of"]) == ("sql", None)


def test_a_warehouse_without_tables_answers_503_with_what_to_run(client, admin_headers):
    url, _ = target_config("chdb")
    fresh_warehouse(url, "").drop()
    with engine_settings(analytics_engine="clickhouse", clickhouse_url=url, clickhouse_cluster=""):
        response = client.get("/admin/analytics/overview", headers=admin_headers)
    assert response.status_code == 503
    assert "run `python -m app warehouse init`" in response.json()["detail"]


def test_a_warehouse_before_its_first_sync_answers_503(client, admin_headers):
    url, _ = target_config("chdb")
    fresh_warehouse(url, "")
    with engine_settings(analytics_engine="clickhouse", clickhouse_url=url, clickhouse_cluster=""):
        response = client.get("/admin/analytics/timeseries", headers=admin_headers)
    assert response.status_code == 503
    assert "has not finished its first sync" in response.json()["detail"]
