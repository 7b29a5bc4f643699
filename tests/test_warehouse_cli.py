"""`python -m app warehouse init|sync|status` on the test database and embedded chDB."""

import pytest

from app.cli import main
from app.db import get_sessionmaker
from tests.conftest import empty_tables
from tests.factories import create_user
from tests.warehouse_support import engine_settings, fresh_warehouse, target_config


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["warehouse", *args])
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_init_sync_twice_and_status(engine, capsys):
    url, _ = target_config("chdb")
    fresh_warehouse(url, "").drop()
    try:
        with get_sessionmaker().begin() as session:
            users = [create_user(session) for _ in range(4)]  # 4 user_signup events
        first_id = min(u.id for u in users)
        with engine_settings(clickhouse_url=url, clickhouse_cluster=""):
            assert run(capsys, "init")[:2] == (0, "warehouse tables ready in warehouse on local\n")
            code, out, err = run(capsys, "sync")
            assert code == 0 and out.startswith("shipped 4 events (already there: 0); last id ")
            assert "shipping events" in err  # the progress bar
            code, out, _ = run(capsys, "sync", "--no-progress")
            assert code == 0 and out.startswith("shipped 0 events (already there: 4)")
            code, out, _ = run(capsys, "status")
        assert code == 0
        lines = dict(line.split(":", 1) for line in out.splitlines())
        assert lines["warehouse rows"].strip() == "4"
        assert lines["source rows"].strip().startswith("4 (max id ")
        assert int(lines["last shipped id"]) >= first_id + 3
        assert lines["lag"].strip().startswith("0 events, ")
    finally:
        empty_tables(engine)


def test_an_unreachable_server_is_a_clear_message_and_exit_code_1(capsys):
    with engine_settings(clickhouse_url="clickhouse://default@127.0.0.1:1/x", clickhouse_cluster=""):
        code, out, err = run(capsys, "status")
    assert code == 1 and out == ""
    assert err.startswith("warehouse status: The analytics warehouse (ClickHouse at 127.0.0.1:1) is unreachable")


def test_a_cluster_needs_a_server_url(capsys):
    url, _ = target_config("chdb")
    with engine_settings(clickhouse_url=url, clickhouse_cluster="warehouse_2shards"):
        code, _, err = run(capsys, "init")
    assert code == 1
    assert err == "warehouse init: CLICKHOUSE_CLUSTER needs a clickhouse:// server URL, not embedded chDB\n"
