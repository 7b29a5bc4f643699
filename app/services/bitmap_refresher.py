"""The server's background upkeep of the unique-user bitmaps (the write side of a cache).

Reports never write; this task decodes the recent bitmaps into memory at start, then
writes missing or stale ones every `ANALYTICS_BITMAP_REFRESH_SECONDS`, in its own
short transactions, so a GET finds today's bitmap at most that old and adds the few
newer events in memory. Several workers may run it at once: a lost race is a
duplicate key, rolled back and retried at the next tick.
"""

import asyncio
import datetime as dt
import logging

from sqlalchemy.exc import DBAPIError, IntegrityError

from app.db import get_sessionmaker, utc_now
from app.services import unique_users

log = logging.getLogger(__name__)
REFRESH_DAYS = 400


def refresh_once(*, days: int = REFRESH_DAYS) -> int:
    """Refresh the bitmaps of the last `days` days; returns rows written."""
    today = utc_now().date()
    with get_sessionmaker().begin() as session:
        return unique_users.refresh_bitmaps(session, today - dt.timedelta(days=days), today, today=today)


def warm_once() -> int:
    with get_sessionmaker()() as session:
        return unique_users.warm(session)


async def run(interval_seconds: int) -> None:
    """Warm the cache, then refresh forever (cancelled at shutdown)."""
    await _guarded(warm_once)
    while True:
        await _guarded(refresh_once)
        await asyncio.sleep(interval_seconds)


async def _guarded(job) -> None:
    try:
        await asyncio.to_thread(job)
    except IntegrityError:
        log.info("bitmap refresh lost a race with another worker; retrying at the next tick")
    except DBAPIError:
        log.warning("bitmap refresh failed; reports stay exact (they read the events instead)", exc_info=True)
