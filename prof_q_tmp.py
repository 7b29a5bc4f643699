import time, datetime as dt, json
from sqlalchemy import event
from sqlalchemy.orm import Session
from app.db import build_engine
from app.services.funnel_query import ENGINE, FunnelQuery
engine = build_engine("sqlite:///var/bench/bench_1m.db")
timings = []
@event.listens_for(engine, "before_cursor_execute")
def b(conn, cursor, statement, params, context, executemany):
    conn.info["t"] = time.perf_counter()
@event.listens_for(engine, "after_cursor_execute")
def a(conn, cursor, statement, params, context, executemany):
    timings.append((time.perf_counter() - conn.info["t"], statement[:150].replace("\n", " ")))
import glob
info = json.load(open(glob.glob("var/bench/*bench_1m*.json")[0]))
now = dt.datetime.fromisoformat(info["now"])
today = now.date()
with Session(engine) as s:
    q = FunnelQuery(start=today - dt.timedelta(days=29), end=today, now=now, tz="UTC")
    t = time.perf_counter(); ENGINE.funnel(s, q); print("total", time.perf_counter() - t)
    timings.clear()
    t = time.perf_counter(); ENGINE.funnel(s, q); print("total", time.perf_counter() - t)
    for d, st in sorted(timings, reverse=True)[:8]:
        print(f"{d*1000:8.1f} ms  {st}")
import cProfile, pstats
with Session(engine) as s:
    cProfile.run("ENGINE.funnel(s, q)", "/tmp/q.prof")
pstats.Stats("/tmp/q.prof").sort_stats("cumulative").print_stats(18)
