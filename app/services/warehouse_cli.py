"""`python -m app warehouse init|sync|status`: the shell side of `app.services.warehouse`."""

import argparse
import sys
import time

from app.config import Settings
from app.db import get_engine
from app.services.clickhouse_client import WarehouseQueryError, WarehouseUnavailable
from app.services.warehouse import Warehouse, open_warehouse


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run one warehouse action; exit code 0 on success, 1 when ClickHouse cannot do it."""
    try:
        warehouse = open_warehouse(settings)
        if args.action == "init":
            hosts = warehouse.init()
            print(f"warehouse tables ready in {warehouse.db} on {', '.join(hosts)}")
        elif args.action == "sync":
            return _sync(warehouse, args)
        else:
            _status(warehouse)
    except (WarehouseUnavailable, WarehouseQueryError, ValueError) as exc:
        print(f"warehouse {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def _sync(warehouse: Warehouse, args: argparse.Namespace) -> int:
    if args.from_scratch:
        warehouse.drop()
    warehouse.init()
    while True:
        with get_engine().connect() as connection:
            result = warehouse.sync(connection, batch_size=args.batch_size, progress=not args.no_progress and not args.follow)
        if result.shipped or not args.follow:
            print(f"shipped {result.shipped} events (already there: {result.skipped_duplicates}); last id {result.last_id}")
        if not args.follow:
            return 0
        try:
            time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0


def _status(warehouse: Warehouse) -> None:
    with get_engine().connect() as connection:
        status = warehouse.status(connection)
    lag = f"{status.lag_seconds:.1f} s" if status.lag_seconds is not None else "never caught up"
    print(f"warehouse rows:   {status.warehouse_rows}")
    print(f"source rows:      {status.source_rows} (max id {status.source_max_id})")
    print(f"last shipped id:  {status.last_id}")
    print(f"caught up at:     {status.caught_up_at.isoformat() if status.caught_up_at else '-'}")
    print(f"lag:              {status.lag_events} events, {lag}")
    if status.warehouse_rows != status.source_rows and not status.lag_events:
        print("warning: row counts differ with no lag; `sync --from-scratch` ships everything again")
