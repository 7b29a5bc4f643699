"""The server's background shipping of analytics events to ClickHouse (ANALYTICS_ENGINE=clickhouse).

Every `WAREHOUSE_SYNC_INTERVAL_SECONDS` a pass reads the new events on its own
connection and ships them (`Warehouse.sync`). It never writes to the shop's database,
so the shop's flows never wait for it, and a ClickHouse outage only delays the reports'
freshness (`fresh_as_of`). Of several server workers one ships at a time: a pass takes a
named lock in the shop's database (`named_lock`) and is skipped while another worker
holds it. Were two to ship at once anyway (the `warehouse sync` command beside a server),
the id check before each insert and `FINAL` in the reports keep every event counted once.
"""

import asyncio
import logging

from app.config import get_settings
from app.db import get_engine
from app.services import named_lock
from app.services.clickhouse_client import WarehouseQueryError, WarehouseUnavailable
from app.services.warehouse import SyncResult, open_warehouse

log = logging.getLogger(__name__)
_initialized: set[tuple[str, str]] = set()


LOCK_NAME = "shop_warehouse_shipper"


def ship_once() -> SyncResult | None:
    """One shipping pass over the new events (tables created first if missing); None when another
    worker's pass holds the lock."""
    settings = get_settings()
    with get_engine().connect() as connection, named_lock.held(connection, LOCK_NAME) as mine:
        if not mine:
            return None
        warehouse = open_warehouse(settings)
        if (settings.clickhouse_url, settings.clickhouse_cluster) not in _initialized:
            warehouse.init()
            _initialized.add((settings.clickhouse_url, settings.clickhouse_cluster))
        return warehouse.sync(connection)


async def run(interval_seconds: float) -> None:
    """Ship forever (cancelled at shutdown)."""
    while True:
        try:
            await asyncio.to_thread(ship_once)
        except (WarehouseUnavailable, WarehouseQueryError) as exc:
            log.warning("shipping analytics events to ClickHouse failed; retrying: %s", exc)
        except Exception:
            log.exception("shipping analytics events to ClickHouse failed; retrying")
        await asyncio.sleep(interval_seconds)
