"""Funnel and retention read speed, DuckDB's same funnel from the raw events, and the write cost.

    .venv/bin/python -m bench.funnel --sizes 1m,10m --databases sqlite,mysql

Uses the bench databases of `bench.run` (loaded once per day and size; the load runs
`rebuild-rollups`' funnel rebuild). Prints medians in ms and the ratio to DuckDB.
"""

import argparse
import datetime as dt
import statistics
import sys
import time

import duckdb
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.config import get_settings
from app.demo import generate
from app.models.funnel import FunnelPending
from app.models.plan import Plan
from app.models.user import User
from app.services import orders
from app.services.analytics import Scope
from app.services.dates import DayRange
from app.services.finance_reports import overview_report, timeseries_report
from app.services.funnel_query import ENGINE, FunnelQuery
from app.services.funnel_store import catch_up
from app.services.internal_users import internal_user_ids
from app.services.retention import retention
from bench import data as bench_data
from bench.queries import timed
from bench.run import SIZES
from bench.writes import without_record_event


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def our_calls(session: Session, now: dt.datetime) -> dict:
    today = now.date()
    year = (today - dt.timedelta(days=364), today)
    month = (today - dt.timedelta(days=29), today)
    internal = frozenset(internal_user_ids(session, get_settings()))

    def funnel(days, **kwargs):
        query = FunnelQuery(start=days[0], end=days[1], now=now, tz="UTC", **kwargs)

        def run():
            result = ENGINE.funnel(session, query)
            session.commit()
            return result
        return run

    def cohorts(interval):
        def run():
            result = retention(session, interval=interval, start=year[0], end=year[1], tz="UTC")
            session.commit()
            return result
        return run

    def report(call):
        def run():
            result = call().model_dump_json()
            session.commit()
            return result
        return run

    days = DayRange(*year)
    new_york = Scope(zone_name="America/New_York", now=now)
    without_internal = Scope(internal_ids=internal, now=now)
    return {
        "timeseries week 365d": report(lambda: timeseries_report(session, session, days, None, None, "week")),
        "timeseries month 365d": report(lambda: timeseries_report(session, session, days, None, None, "month")),
        "timeseries 365d tz=America/New_York": report(lambda: timeseries_report(session, session, days, None, None, scope=new_york)),
        "overview 365d tz=America/New_York": report(lambda: overview_report(session, session, days, None, None, today=today, scope=new_york)),
        "overview 365d exclude_internal": report(
            lambda: overview_report(session, session, days, None, None, today=today, scope=without_internal)),
        "overview 365d breakdown=plan": report(lambda: overview_report(session, session, days, None, None, today=today, breakdown="plan")),
        "funnel 30d": funnel(month),
        "funnel 365d": funnel(year),
        "funnel 365d window 90": funnel(year, window_days=90),
        "funnel 365d by=order": funnel(year, by="order"),
        "funnel 365d steps=verified": funnel(year, with_verified=True),
        "funnel 365d exclude_internal": funnel(year, exclude_internal=True, internal_user_ids=internal),
        "funnel 30d breakdown=plan": funnel(month, breakdown="plan"),
        "funnel 365d breakdown=plan": funnel(year, breakdown="plan"),
        "funnel 365d breakdown=signup_month": funnel(year, breakdown="signup_month"),
        "funnel 365d tz=America/New_York": lambda: ENGINE.funnel(
            session, FunnelQuery(start=year[0], end=year[1], now=now, tz="America/New_York")),
        "retention week 365d": cohorts("week"),
        "retention month 365d": cohorts("month"),
    }


DUCK_FUNNEL = """
WITH s AS (
  SELECT user_id, min(occurred_at) AS t1 FROM events WHERE event_type = 'user_signup' GROUP BY 1
), s2 AS (SELECT * FROM s WHERE t1 >= ? AND t1 < ?),
c AS (SELECT s2.user_id, t1, min(e.occurred_at) AS t2 FROM s2 LEFT JOIN events e
      ON e.user_id = s2.user_id AND e.event_type = 'checkout_started' AND e.occurred_at >= t1 GROUP BY 1, 2),
p AS (SELECT c.user_id, t1, t2, min(e.occurred_at) AS t3 FROM c LEFT JOIN events e
      ON e.user_id = c.user_id AND e.event_type = 'payment_succeeded' AND e.occurred_at >= t2 GROUP BY 1, 2, 3),
a AS (SELECT p.user_id, t1, t2, t3, min(e.occurred_at) AS t4 FROM p LEFT JOIN events e
      ON e.user_id = p.user_id AND e.event_type = 'esim_activated' AND e.occurred_at >= t3 GROUP BY 1, 2, 3, 4),
r AS (SELECT *, t2 - t1 <= INTERVAL 14 DAY AS r2, t3 - t1 <= INTERVAL 14 DAY AS r3, t4 - t1 <= INTERVAL 14 DAY AS r4 FROM a)
SELECT count(*),
       count(*) FILTER (WHERE r2), count(*) FILTER (WHERE r3), count(*) FILTER (WHERE r4),
       list_sort(list(epoch(t2) - epoch(t1)) FILTER (WHERE r2)),
       list_sort(list(epoch(t3) - epoch(t2)) FILTER (WHERE r3)),
       list_sort(list(epoch(t4) - epoch(t3)) FILTER (WHERE r4))
FROM r
"""


def duckdb_funnel(size: str, now: dt.datetime, seed: int, repeat: int) -> tuple[dict, list]:
    demo = generate(days=bench_data.DAYS, users=int(SIZES[size] / bench_data.EVENTS_PER_USER), seed=seed, now=now)
    events = bench_data.duckdb_events(demo)  # noqa: F841 - read by DuckDB's replacement scan
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("CREATE TABLE events AS SELECT * FROM events")
    today = now.date()
    bounds = [dt.datetime.combine(today - dt.timedelta(days=364), dt.time()), dt.datetime.combine(today + dt.timedelta(days=1), dt.time())]
    row = con.execute(DUCK_FUNNEL, bounds).fetchone()
    timing = timed(lambda: con.execute(DUCK_FUNNEL, bounds).fetchone(), repeat)
    con.close()
    counts = list(row[:4])

    def rank(values, percent):
        return float(values[max(1, -(-len(values) * percent // 100)) - 1]) if values else None

    medians = [(rank(v, 50), rank(v, 90)) for v in row[4:]]
    return timing, [counts, medians]


def write_cost(engine, *, rounds: int = 4, per_round: int = 40) -> dict:
    """Median ms of a committed checkout + payment (two events) with and without record_event."""
    with Session(engine) as session:
        user_ids = session.scalars(select(User.id).order_by(User.id).limit(per_round)).all()
        plan_id = session.scalar(select(Plan.id).order_by(Plan.id))
    samples = {"with": [], "without": []}

    def one(user_id):
        with Session(engine, expire_on_commit=False) as session, session.begin():
            order = orders.create_order(session, session.get(User, user_id), plan_id)
            orders.mark_paid(session, order, source="bench", provider="sandbox")

    for _ in range(rounds):
        for mode in ("without", "with"):
            for user_id in user_ids:
                began = time.perf_counter()
                if mode == "with":
                    one(user_id)
                else:
                    with without_record_event():
                        one(user_id)
                samples[mode].append((time.perf_counter() - began) * 1000)
    with_ms, without_ms = statistics.median(samples["with"]), statistics.median(samples["without"])
    return {"with_ms": round(with_ms, 2), "without_ms": round(without_ms, 2), "per_event_ms": round((with_ms - without_ms) / 2, 3)}


def catch_up_cost(engine) -> dict:
    """The background catch-up's cost: applying the queue the writes left (every rollup, the value rollup included)."""
    with Session(engine) as session:
        queued = session.scalar(select(func.count()).select_from(FunnelPending))
    began = time.perf_counter()
    applied = 0
    while True:
        with Session(engine) as session, session.begin():
            done = catch_up(session)
        if not done:
            break
        applied += done
    seconds = time.perf_counter() - began
    return {"queued": queued, "applied": applied, "ms_per_row": round(seconds * 1000 / max(applied, 1), 3),
            "rows_per_second": round(applied / seconds) if seconds else 0}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.funnel", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m")
    parser.add_argument("--databases", default="sqlite,mysql")
    parser.add_argument("--mysql-url", default=bench_data.default_mysql_url("shop_bench"),
                        help="default: mysqlclient (C) when installed, else PyMySQL")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/shop_bench")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-writes", action="store_true")
    parser.add_argument("--skip-reads", action="store_true", help="only the write cost")
    parser.add_argument("--skip", default="", help="comma-separated words: leave out the queries whose name holds one (e.g. breakdown)")
    args = parser.parse_args(argv)
    lines = ["| events | database | query | median ms | p95 ms | first ms |", "|---|---|---|---:|---:|---:|"]
    for size in [] if args.skip_reads else [s.strip() for s in args.sizes.split(",")]:
        loaded_now = None
        ours_365 = {}
        for kind in [k.strip() for k in args.databases.split(",")]:
            url = bench_data.database_url(kind, size, args.mysql_url, args.postgres_url)
            log(f"[{size}] {kind}: preparing")
            try:
                engine, info = bench_data.prepare(url, events=SIZES[size], seed=args.seed, reuse=True, log=log)
            except OperationalError as exc:
                log(f"  skipped {kind}: {exc.orig}")
                continue
            now = dt.datetime.fromisoformat(info["now"])
            loaded_now = loaded_now or now
            with Session(engine, expire_on_commit=False) as session:
                skipped = [word.strip() for word in args.skip.split(",") if word.strip()]
                for name, call in our_calls(session, now).items():
                    if any(word in name for word in skipped):
                        continue
                    t = timed(call, args.repeat)
                    lines.append(f"| {size} | {kind} | {name} | {t['median']:.2f} | {t['p95']:.2f} | {t['first']:.1f} |")
                    log(lines[-1])
                result = our_calls(session, now)["funnel 365d"]()
                ours_365[kind] = ([s.count for s in result.funnel], [(s.median_seconds, s.p90_seconds) for s in result.funnel[1:]])
            engine.dispose()
        if loaded_now:
            timing, (counts, medians) = duckdb_funnel(size, loaded_now, args.seed, args.repeat)
            lines.append(f"| {size} | duckdb (raw events) | funnel 365d | {timing['median']:.2f} | {timing['p95']:.2f} | {timing['first']:.1f} |")
            log(lines[-1])
            for kind, (our_counts, our_medians) in ours_365.items():
                ours_ms = next(float(line.split("|")[4]) for line in lines if f"| {size} | {kind} | funnel 365d |" in line)
                same = our_counts == counts and our_medians == medians
                lines.append(f"| {size} | {kind} / duckdb | funnel 365d ratio {ours_ms / timing['median']:.3f} | same result: {same} | | |")
                log(lines[-1] + f"  ours {our_counts} {our_medians} duckdb {counts} {medians}")
    if not args.skip_writes:
        for kind in [k.strip() for k in args.databases.split(",")]:
            url = bench_data.database_url(kind, "write", args.mysql_url, args.postgres_url)
            try:
                engine, _ = bench_data.prepare(url, events=100_000, seed=args.seed, reuse=True, log=log)
            except OperationalError as exc:
                log(f"  skipped {kind}: {exc.orig}")
                continue
            cost = write_cost(engine)
            lines.append(f"| 100k | {kind} | write: checkout+payment with / without record_event, added per event | "
                         f"{cost['with_ms']} / {cost['without_ms']} | {cost['per_event_ms']} | |")
            log(lines[-1])
            applied = catch_up_cost(engine)
            lines.append(f"| 100k | {kind} | catch-up of the {applied['applied']} queued rows those writes left, ms per row / rows per s | "
                         f"{applied['ms_per_row']} | {applied['rows_per_second']} | |")
            log(lines[-1])
            engine.dispose()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

