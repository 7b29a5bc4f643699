"""The ClickHouse warehouse: ingest rate, 365-day reports on chDB and a 2-shard cluster, DuckDB on the same rows.

    .venv/bin/python -m bench.warehouse --events 10m [--cluster-url clickhouse://default@127.0.0.1:19001/bench
        --cluster warehouse_2shards] [--lag-seconds 20]

The events are the demo generator's (numpy, in bulk; two years ending now), shipped as
columns straight into `analytics_events` (what `warehouse sync` fills). After the insert the
daily rollup is built once (what `sync` keeps up batch by batch). The reports are the
service calls the admin API makes (`overview_report` / `timeseries_report` with the
ClickHouse engine, and their JSON), so the figures include the previous period, unique
users and top plans. `--lag-seconds` also runs the shipper from an SQLite outbox while a writer
commits events, and reports how far ClickHouse trails the commits.
"""

import argparse
import datetime as dt
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.db import Base
from app.demo import generate
from app.demo import rows as demo_rows
from app.demo.generate import CHECKOUT, EVENT_TYPES, PAID, PAYMENT_FAILED, REFUNDED, SIGNUP
from app.services import analytics, finance_reports
from app.services.clickhouse_client import ChdbClient, NativeClient, literal, parse_native_url
from app.services.clickhouse_engine import ClickHouseEngine
from app.services.dates import resolve_range
from app.services.warehouse import EVENTS, Cursor, Warehouse
from bench import data as bench_data
from bench import queries

SIZES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000, "100m": 100_000_000}
CHUNK = 1_000_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def event_columns(size: int, seed: int, now: dt.datetime) -> tuple[dict[str, Any], dict[int, str]]:
    """The demo events as warehouse columns, and the plan names.

    Strings stay codes into a few names (Arrow dictionary arrays): 100M events as Python
    or numpy strings would take gigabytes and most of the insert's time.
    """
    demo = generate(days=bench_data.DAYS, users=int(size / bench_data.EVENTS_PER_USER), seed=seed, now=now)
    times, kinds, ids = demo_rows.actions(demo)
    is_order = kinds != SIGNUP
    order_index = np.where(is_order, ids - 1, 0)
    plan = demo.order_plan[order_index]
    prices = np.array([p.price_minor_units for p in demo.plans])
    currency_names, plan_currency = np.unique([p.currency for p in demo.plans], return_inverse=True)
    has_money = np.isin(kinds, [CHECKOUT, PAID, REFUNDED])
    columns = {
        "id": np.arange(1, len(kinds) + 1, dtype=np.uint64),
        "event_type": pa.DictionaryArray.from_arrays(kinds, pa.array([EVENT_TYPES[k] for k in range(len(EVENT_TYPES))])),
        "user_id": np.where(is_order, demo.order_user[order_index], ids).astype(np.uint64),
        "plan_id": np.where(is_order, plan + 1, 0).astype(np.uint64),
        "amount_minor_units": np.where(
            has_money, np.where(kinds == REFUNDED, demo.order_refund_amount[order_index], prices[plan]), 0).astype(np.int64),
        # Code 0 is '' (no money, no currency); the plans' currencies follow.
        "currency": pa.DictionaryArray.from_arrays(
            np.where(has_money | (kinds == PAYMENT_FAILED), plan_currency[plan] + 1, 0).astype(np.int8),
            pa.array(["", *currency_names.tolist()])),
        "occurred_at": times.astype("datetime64[s]"),
    }
    return columns, {i + 1: p.name for i, p in enumerate(demo.plans)}


def warehouse_chunk(columns: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    """Rows start..stop as every column of `analytics_events` (the constant ones made here)."""
    chunk = {name: values.slice(start, stop - start) if isinstance(values, pa.Array) else values[start:stop]
             for name, values in columns.items()}
    count = stop - start
    return {
        **chunk,
        "order_id": np.zeros(count, dtype=np.uint64),
        "occurred_at_us": np.zeros(count, dtype=np.uint32),  # the generated times are whole seconds
        "metadata": pa.DictionaryArray.from_arrays(np.zeros(count, dtype=np.int8), pa.array(["{}"])),
        "created_at": chunk["occurred_at"],
        "version": np.ones(count, dtype=np.uint64),
    }


def ingest(warehouse: Warehouse, columns: dict[str, Any]) -> float:
    """Insert every event in chunks of a million; returns events per second."""
    count = len(columns["id"])
    began = time.perf_counter()
    for start in range(0, count, CHUNK):
        if start % (10 * CHUNK) == 0:
            log(f"  inserting events {start + 1:,} ..")
        warehouse.client.insert_columns(EVENTS, warehouse_chunk(columns, start, min(count, start + CHUNK)))
    return count / (time.perf_counter() - began)


def report_times(engine: ClickHouseEngine, today: dt.date, repeat: int) -> dict[str, dict]:
    """What GET /admin/analytics/overview and /timeseries compute with the ClickHouse engine, and their JSON.

    The shop's own part (the ordered conversions from its funnel rollups, the timeseries' refunds
    and failed payments from its daily totals) reads an empty shop database here: the figures are
    the warehouse's cost, and the bench's SQL runs give the shop's."""
    days = resolve_range(None, None, default_days=365, today=today)
    shop = Session(empty_shop_database())
    return {
        "overview": queries.timed(lambda: finance_reports.overview_report(shop, engine, days, None, None, today=today)
                                  .model_dump_json(), repeat),
        "timeseries": queries.timed(lambda: finance_reports.timeseries_report(shop, engine, days, None, None)
                                    .model_dump_json(), repeat),
        "unique users": queries.timed(lambda: engine.unique_users(days, analytics.ALL_TYPES), repeat),
    }


def empty_shop_database():
    """An in-memory shop database with the schema and no rows."""
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    return engine


def exact_unique_users(engine: ClickHouseEngine, today: dt.date) -> str:
    """Whether the user sets' answer equals uniqExact over the raw events of the range, per type."""
    days = resolve_range(None, None, default_days=365, today=today)
    ours = engine.unique_users(days, analytics.ALL_TYPES)
    recount = dict(engine.client.rows(
        f"SELECT event_type, uniqExact(user_id) FROM {engine.table} WHERE occurred_at >= {literal(days.start_at)} "
        f"AND occurred_at < {literal(days.end_before)} AND user_id != 0 GROUP BY event_type"))
    return "yes" if all(ours[t] == recount.get(t, 0) for t in analytics.ALL_TYPES) else f"NO: {ours} vs {recount}"


def final_cost(warehouse: Warehouse, today: dt.date, repeat: int) -> dict[str, float]:
    """The totals query of a 365-day range with and without FINAL (median ms)."""
    days = resolve_range(None, None, default_days=365, today=today)
    where = f"occurred_at >= toDateTime('{days.start} 00:00:00', 'UTC')"
    sql = f"SELECT event_type, currency, count(), sum(amount_minor_units) FROM {warehouse.events} {{}} WHERE {where} GROUP BY event_type, currency"
    return {label: queries.timed(lambda s=sql.format(final): warehouse.client.rows(s), repeat)["median"]
            for label, final in (("with FINAL", "FINAL"), ("without FINAL", ""))}


def duckdb_times(columns: dict[str, Any], names: dict[int, str], today: dt.date, repeat: int) -> tuple[float, dict]:
    events = pa.table({k: columns[k] for k in ("event_type", "user_id", "plan_id", "amount_minor_units", "currency", "occurred_at")})  # noqa: F841
    plans = {"id": np.array(list(names)), "name": np.array(list(names.values()))}  # noqa: F841
    con = duckdb.connect()
    con.execute("SET threads = 2")
    began = time.perf_counter()
    # The codes as plain text, as analytics_events holds them.
    con.execute("CREATE TABLE events AS SELECT event_type::VARCHAR AS event_type, user_id, plan_id, amount_minor_units, "
                "currency::VARCHAR AS currency, occurred_at FROM events")
    load = len(columns["id"]) / (time.perf_counter() - began)
    con.execute("CREATE TABLE plans AS SELECT * FROM plans")
    calls = queries.duckdb_reference(con, today, 365)
    result = {name: queries.timed(calls[name], repeat) for name in ("overview", "timeseries")}
    con.close()
    return load, result


def sync_ingest(warehouse: Warehouse, columns: dict[str, Any], count: int, folder: Path) -> dict[str, float]:
    """`warehouse sync` of the first `count` events from an SQLite outbox into an empty warehouse: events/s."""
    from sqlalchemy import create_engine

    url = f"sqlite:///{folder / 'sync-outbox.db'}"
    bench_data.migrate(url)
    chunk = warehouse_chunk(columns, 0, count)
    stamps = np.char.replace(np.datetime_as_string(chunk["occurred_at"], unit="us"), "T", " ").tolist()
    currency = chunk["currency"].to_pylist()
    plan = chunk["plan_id"].tolist()
    rows = zip(chunk["id"].tolist(), chunk["event_type"].to_pylist(), chunk["user_id"].tolist(),
               [p or None for p in plan], chunk["amount_minor_units"].tolist(), [c or None for c in currency],
               stamps, stamps, (f"bench:{i}" for i in chunk["id"].tolist()), strict=True)
    with sqlite3.connect(folder / "sync-outbox.db") as db:
        db.executemany("INSERT INTO analytics_events (id, event_type, user_id, plan_id, amount_minor_units, currency, "
                       "metadata, occurred_at, created_at, dedupe_key) VALUES (?, ?, ?, ?, ?, ?, '{}', ?, ?, ?)", rows)
    warehouse.drop()
    warehouse.init()
    engine = create_engine(url)
    began = time.perf_counter()
    with engine.connect() as connection:
        result = warehouse.sync(connection)
    seconds = time.perf_counter() - began
    engine.dispose()
    (folder / "sync-outbox.db").unlink()
    return {"events": result.shipped, "events_per_s": result.shipped / seconds}


def sync_lag(warehouse: Warehouse, seconds: float, rate: int, folder: Path, loaded: int) -> dict[str, float]:
    """A writer commits `rate` events/s into an SQLite outbox while the shipper runs every second.

    The warehouse keeps the `loaded` bulk events (ids 1..loaded, the cursor set after them),
    so each pass refreshes rollups of days and a month as full as the bench's.
    """
    from sqlalchemy import create_engine, insert

    from app.models.analytics import AnalyticsEvent

    url = f"sqlite:///{folder / 'outbox.db'}"
    bench_data.migrate(url)
    # Plain engine (SQLite leaves the users foreign key unchecked), shared by the writer and the
    # shipper threads: a pooled connection may be given back in another thread than its own.
    engine = create_engine(url, connect_args={"check_same_thread": False})
    warehouse._save_cursor(Cursor(loaded, None, loaded))
    commits: list[tuple[int, float]] = []
    stop = threading.Event()

    def writer() -> None:
        next_id, tick = loaded + 1, 0.05
        while not stop.is_set():
            now = dt.datetime.now(dt.UTC)
            rows = [{"id": next_id + i, "event_type": "user_signup", "user_id": next_id + i, "event_metadata": {},
                     "occurred_at": now, "created_at": now, "dedupe_key": f"lag:{next_id + i}"}
                    for i in range(max(1, int(rate * tick)))]
            with engine.begin() as conn:
                conn.execute(insert(AnalyticsEvent), rows)
            commits.append((rows[-1]["id"], time.monotonic()))
            next_id += len(rows)
            time.sleep(tick)

    def shipper() -> None:
        while not stop.is_set():
            with engine.connect() as conn:
                warehouse.sync(conn)
            time.sleep(1.0)

    threads = [threading.Thread(target=writer), threading.Thread(target=shipper)]
    for thread in threads:
        thread.start()
    # Every 0.2 s: how long ago the oldest commit that the reports do not count yet was made.
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
        shipped = warehouse.cursor().last_id  # moves once a batch and its rollups are in: what the reports see
        pending = [t for last, t in list(commits) if last > shipped]
        samples.append(time.monotonic() - pending[0] if pending else 0.0)
    stop.set()
    for thread in threads:
        thread.join()
    samples.sort()
    return {"events": commits[-1][0] if commits else 0, "median_lag_s": samples[len(samples) // 2], "max_lag_s": samples[-1]}


def settle(warehouse: Warehouse, limit_seconds: float = 900) -> float:
    """Wait until no background merge of the warehouse runs on any node: a warehouse between loads, not during one."""
    nodes = warehouse._cluster_nodes() if warehouse.cluster else [warehouse.client]
    began = time.perf_counter()
    while time.perf_counter() - began < limit_seconds:
        if not any(node.rows(f"SELECT count() FROM system.merges WHERE database = {literal(warehouse.db)}")[0][0] for node in nodes):
            break
        time.sleep(2)
    return time.perf_counter() - began


def measure(label: str, warehouse: Warehouse, columns: dict[str, Any], names: dict[int, str], today: dt.date,
            repeat: int) -> str:
    """Fill an empty warehouse in bulk, build its rollups once, time the reports: one table row."""
    warehouse.drop()
    warehouse.init()
    rate = ingest(warehouse, columns)
    log(f"{label}: ingested at {rate:,.0f} events/s")
    began = time.perf_counter()
    warehouse.refresh_daily()
    rollup_seconds = time.perf_counter() - began
    log(f"{label}: rollups built in {rollup_seconds:.1f} s")
    log(f"{label}: background merges done after {settle(warehouse):.0f} s more")
    engine = ClickHouseEngine(warehouse, lambda ids: {i: names.get(i) for i in ids})
    times = report_times(engine, today, repeat)
    final = final_cost(warehouse, today, repeat)
    return (f"| {label} | {rate:,.0f} | {rollup_seconds:.1f} | {times['overview']['median']:.0f} | "
            f"{times['unique users']['median']:.0f} | {times['timeseries']['median']:.0f} | "
            f"{final['with FINAL']:.0f} / {final['without FINAL']:.0f} | {exact_unique_users(engine, today)} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.warehouse", description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="1m", choices=list(SIZES))
    parser.add_argument("--cluster-url", help="a node of the cluster, e.g. clickhouse://default@127.0.0.1:19001/shop_bench")
    parser.add_argument("--cluster", default="warehouse_2shards")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--lag-seconds", type=float, default=0, help="also measure sync lag under load for this long")
    parser.add_argument("--lag-rate", type=int, default=2000, help="events/s committed during the lag run")
    parser.add_argument("--sync-events", type=int, default=1_000_000,
                        help="also time `warehouse sync` of this many of the events from an SQLite outbox (0: skip)")
    args = parser.parse_args(argv)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    folder = Path(tempfile.mkdtemp(prefix="bench-warehouse-"))

    began = time.perf_counter()
    columns, names = event_columns(SIZES[args.events], args.seed, now)
    count = len(columns["id"])
    log(f"generated {count:,} events in {time.perf_counter() - began:.1f} s")
    chdb = Warehouse(ChdbClient(str(folder / "chdb")))
    targets = [("chdb", chdb)]
    if args.cluster_url:
        targets.append((f"2-shard {args.cluster}", Warehouse(NativeClient(parse_native_url(args.cluster_url)), args.cluster)))
    lines = [f"{count:,} events, 365-day range ending {now.date()}, median of {args.repeat} (ms)", ""]
    lines.append("| engine | ingest events/s | rollups build (s) | overview 365 d | of which unique users | timeseries 365 d "
                 "| raw totals with / without FINAL | unique users = raw uniqExact |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---|")
    notes = []
    # chDB and what runs beside it first, the cluster (the slowest) last.
    for label, warehouse in targets:
        lines.append(measure(label, warehouse, columns, names, now.date(), args.repeat))
        log(lines[-1])
        if warehouse is not chdb:
            warehouse.drop()  # the cluster's disk back; chDB's folder goes at the end
            continue
        load, duck = duckdb_times(columns, names, now.date(), args.repeat)
        duck_line = (f"| DuckDB (raw table, same rows) | {load:,.0f} (load) | – | {duck['overview']['median']:.0f} | – | "
                     f"{duck['timeseries']['median']:.0f} | – | (count DISTINCT) |")
        log(duck_line)
        if args.lag_seconds:
            lag = sync_lag(chdb, args.lag_seconds, args.lag_rate, folder, count)
            notes.append(f"sync lag while committing {args.lag_rate} events/s for {args.lag_seconds:.0f} s "
                         f"({lag['events'] - count:,} events, SQLite outbox → chDB holding the {count:,}, pass every 1 s): "
                         f"median {lag['median_lag_s']:.2f} s, max {lag['max_lag_s']:.2f} s")
            log(notes[-1])
        if args.sync_events:
            synced = sync_ingest(chdb, columns, min(count, args.sync_events), folder)
            notes.append(f"`warehouse sync` from an SQLite outbox into empty chDB: {synced['events']:,} events at "
                         f"{synced['events_per_s']:,.0f} events/s (read, insert, rollups per batch)")
            log(notes[-1])
        chdb.drop()
    lines += [duck_line, "", *notes]
    chdb.client.close()
    shutil.rmtree(folder, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
