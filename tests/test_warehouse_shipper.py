"""A running server with ANALYTICS_ENGINE=clickhouse ships new events by itself, and the shop never waits for it."""

import time

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import get_sessionmaker
from app.main import app
from app.models.analytics import AnalyticsEvent
from tests.conftest import empty_tables
from tests.factories import create_user
from tests.warehouse_support import engine_settings, fresh_warehouse, target_config


def test_a_running_server_ships_committed_events_in_the_background(engine):
    url, _ = target_config("chdb")
    warehouse = fresh_warehouse(url, "")
    count = 0
    try:
        with engine_settings(analytics_engine="clickhouse", clickhouse_url=url, clickhouse_cluster="",
                             warehouse_sync_interval_seconds=0.2):
            with TestClient(app):  # the lifespan starts the shipper
                with get_sessionmaker().begin() as session:
                    for _ in range(3):
                        create_user(session)  # each records a user_signup
                deadline = time.monotonic() + 30
                while count < 3 and time.monotonic() < deadline:
                    time.sleep(0.1)
                    count = warehouse.client.rows(f"SELECT count() FROM {warehouse.events} FINAL")[0][0]
    finally:
        empty_tables(engine)
    assert count == 3
    assert warehouse.cursor().caught_up_at is not None


def test_the_shop_records_events_while_clickhouse_is_unreachable(engine):
    """The shipper fails and retries on its own; the business transaction never touches ClickHouse."""
    try:
        with engine_settings(analytics_engine="clickhouse", clickhouse_url="clickhouse://default@127.0.0.1:1/x",
                             warehouse_sync_interval_seconds=0.2):
            with TestClient(app) as client:  # the shipper runs, and fails, beside the request
                time.sleep(0.5)
                response = client.post("/auth/request-code", json={"email": "offline-warehouse@shop.test"})
        assert response.status_code == 202
        with get_sessionmaker()() as session:
            assert session.scalar(select(func.count()).select_from(AnalyticsEvent)) == 1
    finally:
        empty_tables(engine)
