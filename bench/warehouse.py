"""The ClickHouse warehouse: ingest rate, 365-day reports on chDB and a 2-shard cluster, DuckDB on the same rows.

    .venv/bin/python -m bench.warehouse --events 10m [--cluster-url clickhouse://default@127.0.0.1:19001/bench
        --cluster warehouse_2shards] [--lag-seconds 20]

The events are the demo generator's (numpy, in bulk; two years ending now), shipped as
columns straight into `analytics_events` (what `warehouse sync` fills). After the insert the
daily rollup is built once (what `sync` keeps up batch by batch). The reports are the
service calls the admin API makes (`analytics.overview` / `timeseries` with the
ClickHouse engine), so the figures include FINAL, the previous period, unique users and
top plans. `--lag-seconds` also runs the shipper from an SQLite outbox while a writer
commits events, and reports how far ClickHouse trails the commits.
"""

import argparse
import datetime as dt
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import numpy as np

from app.demo import generate
from app.services import analytics
from app.services.clickhouse_client import ChdbClient, NativeClient, parse_native_url
from app.services.clickhouse_engine import ClickHouseEngine
from app.services.dates import resolve_range
from app.services.warehouse import EVENTS, Warehouse
from bench import data as bench_data
from bench import queries

SIZES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000, "100m": 100_000_000}
CHUNK = 1_000_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def event_columns(size: int, seed: int, now: dt.datetime) -> tuple[dict[str, np.ndarray], dict[int, str]]:
    """The demo events as warehouse columns, and the plan names."""
    demo = generate(days=bench_data.DAYS, users=int(size / bench_data.EVENTS_PER_USER), seed=seed, now=now)
    raw = bench_data.duckdb_events(demo)
    count = len(raw["event_type"])
    seconds = raw["occurred_at"].astype("datetime64[s]")
    columns = {
        "id": np.arange(1, count + 1, dtype=np.uint64),
        "event_type": raw["event_type"],
        "user_id": raw["user_id"].astype(np.uint64),
        "order_id": np.zeros(count, dtype=np.uint64),
        "plan_id": np.where(raw["plan_id"] < 0, 0, raw["plan_id"]).astype(np.uint64),
        "amount_minor_units": raw["amount_minor_units"].astype(np.int64),
        "currency": raw["currency"],
        "metadata": np.full(count, "{}"),
        "occurred_at": seconds,
        "created_at": seconds,
        "version": np.ones(count, dtype=np.uint64),
    }
    return columns, {i + 1: p.name for i, p in enumerate(demo.plans)}


def ingest(warehouse: Warehouse, columns: dict[str, np.ndarray]) -> float:
    """Insert every event in chunks of a million; returns events per second."""
    count = len(columns["id"])
    began = time.perf_counter()
    for start in range(0, count, CHUNK):
        chunk = {name: values[start:start + CHUNK] for name, values in columns.items()}
        client = warehouse.client
        log(f"  inserting events {start + 1:,} .. {min(count, start + CHUNK):,}")
        if isinstance(client, ChdbClient):
            client.insert_columns(EVENTS, chunk)
        else:
            _native_insert(client, chunk)
    return count / (time.perf_counter() - began)


def _native_insert(client: NativeClient, chunk: dict[str, np.ndarray]) -> None:
    names = list(chunk)
    as_lists = [chunk[n].tolist() if chunk[n].dtype.kind != "M" else chunk[n].astype(dt.datetime).tolist() for n in names]
    client._client().execute(f"INSERT INTO {client.database}.{EVENTS} ({', '.join(names)}) VALUES", as_lists, columnar=True)


def report_times(engine: ClickHouseEngine, today: dt.date, repeat: int) -> dict[str, dict]:
    days = resolve_range(None, None, default_days=365, today=today)
    return {
        "overview": queries.timed(lambda: analytics.overview(engine, days), repeat),
        "timeseries": queries.timed(lambda: analytics.timeseries(engine, days), repeat),
        "unique users": queries.timed(lambda: engine.unique_users(days, analytics.ALL_TYPES), repeat),
    }


def final_cost(warehouse: Warehouse, today: dt.date, repeat: int) -> dict[str, float]:
    """The totals query of a 365-day range with and without FINAL (median ms)."""
    days = resolve_range(None, None, default_days=365, today=today)
    where = f"occurred_at >= toDateTime('{days.start} 00:00:00', 'UTC')"
    sql = f"SELECT event_type, currency, count(), sum(amount_minor_units) FROM {warehouse.events} {{}} WHERE {where} GROUP BY event_type, currency"
    return {label: queries.timed(lambda s=sql.format(final): warehouse.client.rows(s), repeat)["median"]
            for label, final in (("with FINAL", "FINAL"), ("without FINAL", ""))}


def duckdb_times(columns: dict[str, np.ndarray], names: dict[int, str], today: dt.date, repeat: int) -> tuple[float, dict]:
    events = {k: columns[k] for k in ("event_type", "user_id", "plan_id", "amount_minor_units", "currency", "occurred_at")}  # noqa: F841
    plans = {"id": np.array(list(names)), "name": np.array(list(names.values()))}  # noqa: F841
    con = duckdb.connect()
    con.execute("SET threads = 2")
    began = time.perf_counter()
    con.execute("CREATE TABLE events AS SELECT * FROM events")
    load = len(columns["id"]) / (time.perf_counter() - began)
    con.execute("CREATE TABLE plans AS SELECT * FROM plans")
    calls = queries.duckdb_reference(con, today, 365)
    result = {name: queries.timed(calls[name], repeat) for name in ("overview", "timeseries")}
    con.close()
    return load, result


def sync_lag(warehouse: Warehouse, seconds: float, rate: int, folder: Path) -> dict[str, float]:
    """A writer commits `rate` events/s into an SQLite outbox while the shipper runs every second."""
    from sqlalchemy import create_engine, insert

    from app.models.analytics import AnalyticsEvent

    url = f"sqlite:///{folder / 'outbox.db'}"
    bench_data.migrate(url)
    engine = create_engine(url)  # plain engine: SQLite leaves the users foreign key unchecked
    warehouse.drop()
    warehouse.init()
    commits: list[tuple[int, float]] = []
    stop = threading.Event()

    def writer() -> None:
        next_id, tick = 1, 0.05
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
    # Every 0.2 s: how long ago the oldest commit that ClickHouse does not hold yet was made.
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
        shipped = warehouse.client.rows(f"SELECT max(id) FROM {warehouse.events}")[0][0]
        pending = [t for last, t in list(commits) if last > shipped]
        samples.append(time.monotonic() - pending[0] if pending else 0.0)
    stop.set()
    for thread in threads:
        thread.join()
    samples.sort()
    return {"events": commits[-1][0] if commits else 0, "median_lag_s": samples[len(samples) // 2], "max_lag_s": samples[-1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.warehouse", description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="1m", choices=list(SIZES))
    parser.add_argument("--cluster-url", help="a node of the cluster, e.g. clickhouse://default@127.0.0.1:19001/shop_bench")
    parser.add_argument("--cluster", default="warehouse_2shards")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--lag-seconds", type=float, default=0, help="also measure sync lag under load for this long")
    parser.add_argument("--lag-rate", type=int, default=2000, help="events/s committed during the lag run")
    args = parser.parse_args(argv)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    folder = Path(tempfile.mkdtemp(prefix="bench-warehouse-"))

    began = time.perf_counter()
    columns, names = event_columns(SIZES[args.events], args.seed, now)
    count = len(columns["id"])
    log(f"generated {count:,} events in {time.perf_counter() - began:.1f} s")
    targets = [("chdb", Warehouse(ChdbClient(str(folder / "chdb"))))]
    if args.cluster_url:
        targets.append((f"2-shard {args.cluster}", Warehouse(NativeClient(parse_native_url(args.cluster_url)), args.cluster)))
    lines = [f"{count:,} events, 365-day range ending {now.date()}, median of {args.repeat} (ms)", ""]
    lines.append("| engine | ingest events/s | daily rollup build (s) | overview 365 d | of which unique users | timeseries 365 d "
                 "| raw totals with / without FINAL |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for label, warehouse in targets:
        warehouse.drop()
        warehouse.init()
        rate = ingest(warehouse, columns)
        log(f"{label}: ingested at {rate:,.0f} events/s")
        began = time.perf_counter()
        warehouse.refresh_daily()
        rollup_seconds = time.perf_counter() - began
        engine = ClickHouseEngine(warehouse, lambda ids: {i: names.get(i) for i in ids})
        times = report_times(engine, now.date(), args.repeat)
        final = final_cost(warehouse, now.date(), args.repeat)
        lines.append(f"| {label} | {rate:,.0f} | {rollup_seconds:.1f} | {times['overview']['median']:.0f} | "
                     f"{times['unique users']['median']:.0f} | {times['timeseries']['median']:.0f} | "
                     f"{final['with FINAL']:.0f} / {final['without FINAL']:.0f} |")
        log(lines[-1])
    load, duck = duckdb_times(columns, names, now.date(), args.repeat)
    lines.append(f"| DuckDB (raw table, same rows) | {load:,.0f} (load) | – | {duck['overview']['median']:.0f} | – | "
                 f"{duck['timeseries']['median']:.0f} | – |")
    if args.lag_seconds:
        lag = sync_lag(targets[0][1], args.lag_seconds, args.lag_rate, folder)
        lines += ["", f"sync lag while committing {args.lag_rate} events/s for {args.lag_seconds:.0f} s "
                      f"({lag['events']:,} events, SQLite outbox → chDB, pass every 1 s): "
                      f"median {lag['median_lag_s']:.2f} s, max {lag['max_lag_s']:.2f} s"]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
