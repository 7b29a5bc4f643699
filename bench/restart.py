"""The first report calls of a freshly started process, as after a server restart.

    python -m bench.restart URL TODAY RANGE_DAYS

Prints JSON: the start-up warm-up (what the server's lifespan runs: decode the recent
user bitmaps and answer the dashboard's default reports once), the first call of each
benchmarked report after it, and the first overview without any warm-up, in ms.
"""

import datetime as dt
import json
import sys
import time

from sqlalchemy.orm import Session

from app.db import build_engine
from app.services import bitmap_refresher, unique_users
from bench import queries


def main() -> int:
    url, today, range_days = sys.argv[1], dt.date.fromisoformat(sys.argv[2]), int(sys.argv[3])
    engine = build_engine(url)
    result = {}
    with Session(engine, expire_on_commit=False) as session:
        calls = queries.ours(session, today, range_days)
        began = time.perf_counter()
        calls["overview"]()
        result["overview_without_warmup"] = (time.perf_counter() - began) * 1000
    engine.dispose()
    unique_users.CACHE.clear()
    engine = build_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        began = time.perf_counter()
        bitmap_refresher.warm_once(session, today=today)
        result["warmup"] = (time.perf_counter() - began) * 1000
        for name, call in queries.ours(session, today, range_days).items():
            began = time.perf_counter()
            call()
            result[name] = (time.perf_counter() - began) * 1000
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
