"""Projection speed with `method=auto` on 365 days of history: cold (nothing cached) and warm.

    .venv/bin/python -m bench.forecast --sizes 1m --databases sqlite,mysql

Uses the same bench databases as `bench.run` (loaded once per day and size, reused).
Prints, per database and projection shape, in ms:
- `new process`: the first call in a fresh interpreter (includes importing statsmodels);
- `cold`: median of calls with the in-process answer cache emptied before each (every
  model fitted again: 3 metrics × up to 8 backtest origins × 3 methods);
- `warm`: median and p95 of repeated calls (the rollup read and the cache lookup).
"""

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db import build_engine
from app.services import analytics, forecast
from bench import data as bench_data

SIZES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
SHAPES = {"dashboard 14 d window, 7 d horizon": (14, 7), "largest 90 d window, 30 d horizon": (90, 30)}
TRAINING_DAYS = 365


def call(session: Session, today: dt.date, window: int, horizon: int):
    result = analytics.projections(session, window_days=window, horizon_days=horizon, currency="USD", as_of=today,
                                   today=today, method="auto", level=80, training_days=TRAINING_DAYS)
    session.commit()  # one transaction per call, like a request
    return result


def timed(function) -> float:
    began = time.perf_counter()
    function()
    return (time.perf_counter() - began) * 1000


def measure(url: str, today: dt.date, repeat: int, cold_repeat: int) -> list[dict]:
    engine = build_engine(url)
    rows = []
    with Session(engine, expire_on_commit=False) as session:
        for shape, (window, horizon) in SHAPES.items():
            cold = []
            for _ in range(cold_repeat):
                forecast._project.cache_clear()
                cold.append(timed(lambda: call(session, today, window, horizon)))  # noqa: B023
            warm = sorted(timed(lambda: call(session, today, window, horizon)) for _ in range(repeat))  # noqa: B023
            body = call(session, today, window, horizon)
            rows.append({
                "shape": shape, "cold_median": statistics.median(cold), "warm_median": statistics.median(warm),
                "warm_p95": warm[min(len(warm) - 1, round(0.95 * (len(warm) - 1)))],
                "models": body.models.model_dump() if body.models else None,
                "training_days": body.training.days if body.training else 0,
            })
    engine.dispose()
    return rows


def first_in_new_process(url: str, today: dt.date) -> float:
    output = subprocess.run([sys.executable, "-m", "bench.forecast", "--once", url, today.isoformat()],
                            check=True, capture_output=True, text=True).stdout
    return float(output.strip().splitlines()[-1])


def once(url: str, today: dt.date) -> None:
    engine = build_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        window, horizon = SHAPES["dashboard 14 d window, 7 d horizon"]
        print(timed(lambda: call(session, today, window, horizon)))
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.forecast", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m")
    parser.add_argument("--databases", default="sqlite,mysql")
    parser.add_argument("--mysql-url", default=bench_data.default_mysql_url("shop_forecast"),
                        help="default: mysqlclient (C) when installed, else PyMySQL")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/shop_forecast")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--cold-repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--once", nargs=2, metavar=("URL", "TODAY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.once:
        once(args.once[0], dt.date.fromisoformat(args.once[1]))
        return 0
    results = []
    for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
            url = bench_data.database_url(kind, size, args.mysql_url, args.postgres_url)
            print(f"[{size}] {kind}: preparing", file=sys.stderr, flush=True)
            try:
                engine, info = bench_data.prepare(url, events=SIZES[size], seed=args.seed, reuse=True,
                                                  log=lambda m: print(m, file=sys.stderr, flush=True))
            except OperationalError as exc:
                print(f"  skipped {kind}: {exc.orig}", file=sys.stderr)
                continue
            engine.dispose()
            today = dt.date.fromisoformat(info["day"])
            new_process = first_in_new_process(url, today)
            for row in measure(url, today, args.repeat, args.cold_repeat):
                results.append({"size": size, "database": kind, "events": info["loaded_events"], "new_process": new_process, **row})
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print("| size | database | shape | first call, new process ms | cold median ms | warm median ms | warm p95 ms | chosen (revenue/signups/payments) |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for r in results:
        models = "/".join(r["models"].values()) if r["models"] else "-"
        print(f"| {r['size']} | {r['database']} | {r['shape']} | {r['new_process']:.0f} | {r['cold_median']:.0f} | "
              f"{r['warm_median']:.1f} | {r['warm_p95']:.1f} | {models} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
