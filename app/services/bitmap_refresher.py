"""The server's background upkeep of the analytics caches (the write side of a cache).

Reports never write. At start this task warms the process: it decodes the recent user
bitmaps into memory and answers the dashboard's reports once (the database's buffer
cache and SQLAlchemy's statement cache), so the first real request is as fast as the
next ones. Then, every `ANALYTICS_BITMAP_REFRESH_SECONDS`, in its own short
transactions, it applies the funnel queue (`funnel_store.catch_up`: the entrants whose
events `record_event` queued) and writes missing or stale bitmaps, so a GET finds
both at most that old and adds the few newer events in memory. Several
workers may run it at once: a lost race is a duplicate key, rolled back and retried at
the next tick.
"""

import asyncio
import contextlib
import datetime as dt
import gc
import logging

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import get_sessionmaker, utc_now
from app.services import analytics, finance_reports, funnel_store, unique_users
from app.services.dates import MAX_RANGE_DAYS, resolve_range

log = logging.getLogger(__name__)
REFRESH_DAYS = 400


def refresh_once(*, days: int = REFRESH_DAYS) -> int:
    """Refresh the bitmaps of the last `days` days; returns rows written."""
    today = utc_now().date()
    with get_sessionmaker().begin() as session:
        return unique_users.refresh_bitmaps(session, today - dt.timedelta(days=days), today, today=today)


def catch_up_once() -> int:
    """Apply the whole funnel queue, a batch per transaction; returns queue rows applied."""
    applied = 0
    while True:
        with get_sessionmaker().begin() as session:
            batch = funnel_store.catch_up(session)
        applied += batch
        if batch < funnel_store.CATCH_UP_BATCH:
            return applied


def warm_once(session: Session | None = None, *, today: dt.date | None = None) -> int:
    """Decode the recent bitmaps and answer the dashboard's reports once; returns bitmaps decoded."""
    today = today or utc_now().date()
    with contextlib.ExitStack() as stack:
        if session is None:
            session = stack.enter_context(get_sessionmaker()())
        decoded = unique_users.warm(session, today=today)
        settings = get_settings()
        for range_days in {settings.analytics_default_range_days, 7, 90, MAX_RANGE_DAYS}:
            days = resolve_range(None, None, default_days=range_days, today=today)
            # What the endpoints compute: the report and its finance figures.
            finance_reports.overview_report(session, session, days, None, None, today=today)
            finance_reports.timeseries_report(session, session, days, None, None)
        warm_projection(session, today=today)
        session.rollback()
    # What the warm-up decoded and fitted lives as long as the process: leave it out of the
    # cyclic collector's full passes, which otherwise cost ~100 ms each on a 2-core machine
    # and land inside whichever request triggers one.
    gc.collect()
    gc.freeze()
    return decoded


# The dashboard's projection (its defaults, method=auto) and the largest the API allows
# (90-day window, 30-day horizon), each as the dashboard (auto) and the API default ask it.
WARM_SHAPES = ((None, None), (90, 30))
WARM_METHODS = ("auto", "moving_average")


def warm_projection(session: Session | None = None, *, today: dt.date | None = None) -> None:
    """Answer the usual projections once, so their fitted models and backtests are cached."""
    today = today or utc_now().date()
    settings = get_settings()
    with contextlib.ExitStack() as stack:
        if session is None:
            session = stack.enter_context(get_sessionmaker()())
        for window_days, horizon_days in WARM_SHAPES:
            for method in WARM_METHODS:
                analytics.projections(
                    session,
                    window_days=window_days or settings.analytics_projection_window_days,
                    horizon_days=horizon_days or settings.analytics_projection_horizon_days,
                    currency=settings.default_currency,
                    as_of=today,
                    today=today,
                    method=method,
                    training_days=settings.analytics_forecast_training_days,
                )
        session.rollback()


async def run(interval_seconds: int) -> None:
    """Warm the cache, then refresh forever (cancelled at shutdown)."""
    await _guarded(warm_once)
    while True:
        await _guarded(catch_up_once)
        await _guarded(refresh_once)
        # Cheap while cached; after midnight UTC (a new complete day) it fits the new models
        # here instead of in the first admin's request.
        await _guarded(warm_projection)
        await asyncio.sleep(interval_seconds)


async def _guarded(job) -> None:
    try:
        await asyncio.to_thread(job)
    except IntegrityError:
        log.info("bitmap refresh lost a race with another worker; retrying at the next tick")
    except DBAPIError:
        log.warning("bitmap refresh failed; reports stay exact (they read the events instead)", exc_info=True)
