"""`python -m loadtest`: the shop under concurrent checkouts, payments and webhooks on MariaDB.

Recreates the database (default `shop_load`), starts uvicorn on loopback, lets many
customers shop for about a minute, then checks that the events table equals a recount of
the orders and that no request got a 5xx, and prints throughput and latency.
Exit status 0 when every check holds.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from loadtest.scenario import run_customers
from loadtest.server import free_port, recreate_database, start_server, stop_server
from loadtest.verify import checks, database_counts, figures, overview_today

DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/shop_load"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("LOAD_DATABASE_URL", DEFAULT_URL), help="a MariaDB/MySQL URL; the database is emptied")
    parser.add_argument("--duration", type=float, default=60, help="seconds of shopping (default 60)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent customers (default 32)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (default 2)")
    parser.add_argument("--profiles", type=int, default=1500, help="eSIM profiles of the first plan; the second gets 1/30 of it (default 1500)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    print(f"database {args.database_url}: recreating and migrating", flush=True)
    recreate_database(args.database_url)
    with tempfile.TemporaryDirectory(prefix="loadtest-mail-") as mail:
        port = free_port()
        server_log = Path(mail) / "uvicorn.log"
        server = start_server(args.database_url, Path(mail), port, args.workers, server_log)
        try:
            print(f"uvicorn on 127.0.0.1:{port} ({args.workers} workers); {args.clients} customers for {args.duration:.0f} s", flush=True)
            started = time.monotonic()
            stats, admin = asyncio.run(run_customers(f"http://127.0.0.1:{port}", Path(mail), args.clients, args.duration, args.profiles, args.seed))
            elapsed = time.monotonic() - started
            overview = asyncio.run(_overview(admin, f"http://127.0.0.1:{port}"))
        finally:
            stop_server(server)
        log_lines = server_log.read_text(errors="replace").splitlines()
    print("\n".join(figures(stats, elapsed)))
    print(f"what the customers saw: {dict(sorted(stats.seen.items()))}")
    retried = sum("Retrying" in line for line in log_lines)
    print(f"server log: {len(log_lines)} lines, {retried} requests retried after a deadlock/lock timeout")
    for line in [line for line in log_lines if "Retrying" not in line][:20]:
        print(f"  | {line}")
    results = checks(database_counts(args.database_url), overview, stats, args.clients)
    for what, passed, detail in results:
        print(f"[{'ok' if passed else 'FAILED'}] {what}" + (f": {detail}" if detail else ""))
    return 0 if all(passed for _, passed, _ in results) else 1


async def _overview(admin, base_url: str) -> dict:
    import httpx

    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        admin.http = http
        return await overview_today(admin)


if __name__ == "__main__":
    sys.exit(main())
