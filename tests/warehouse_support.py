"""The ClickHouse targets of the warehouse tests: embedded chDB always, a server and a cluster when configured.

TEST_CLICKHOUSE_URL=clickhouse://default@127.0.0.1:19002/shop_test_single (one server) and
TEST_CLICKHOUSE_CLUSTER_URL=clickhouse://default@127.0.0.1:19001/shop_test_cluster with
TEST_CLICKHOUSE_CLUSTER=warehouse_2shards (deploy/clickhouse/start.sh starts both; `.ci/run` exports them).
"""

import contextlib
import os
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.api.deps import get_db, unit_of_work
from app.config import get_settings
from app.main import app
from app.services.clickhouse_client import connect
from app.services.warehouse import Warehouse

CHDB_URL = f"chdb://{Path(tempfile.mkdtemp(prefix='shop-warehouse-')) / 'chdb'}"
TARGETS = ["chdb", "server", "cluster"]


def target_config(name: str) -> tuple[str, str]:
    """(CLICKHOUSE_URL, CLICKHOUSE_CLUSTER) of a target, or a pytest skip saying what is missing."""
    if name == "chdb":
        return CHDB_URL, ""
    if name == "server":
        url = os.environ.get("TEST_CLICKHOUSE_URL")
        if not url:
            pytest.skip("no ClickHouse server: set TEST_CLICKHOUSE_URL (deploy/clickhouse/start.sh; .ci/run does)")
        return url, ""
    url, cluster = os.environ.get("TEST_CLICKHOUSE_CLUSTER_URL"), os.environ.get("TEST_CLICKHOUSE_CLUSTER")
    if not (url and cluster):
        pytest.skip("no ClickHouse cluster: set TEST_CLICKHOUSE_CLUSTER_URL and TEST_CLICKHOUSE_CLUSTER (.ci/run does)")
    return url, cluster


def client_on(connection) -> TestClient:
    """A client of the app whose requests run inside `connection`'s test transaction (the caller
    removes the override)."""

    def request_db():
        yield from unit_of_work(Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False))

    app.dependency_overrides[get_db] = request_db
    return TestClient(app)


def fresh_warehouse(url: str, cluster: str) -> Warehouse:
    """Empty warehouse tables on the target."""
    warehouse = Warehouse(connect(url), cluster)
    warehouse.drop()
    warehouse.init()
    return warehouse


@contextlib.contextmanager
def engine_settings(**values):
    """Set analytics settings on the cached Settings for the block (hypothesis cannot take monkeypatch)."""
    settings = get_settings()
    before = {name: getattr(settings, name) for name in values}
    for name, value in values.items():
        setattr(settings, name, value)
    try:
        yield settings
    finally:
        for name, value in before.items():
            setattr(settings, name, value)

