"""The funnel's asynchronous upkeep: record_event queues, the catch-up applies, reports are exact either way."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from app.models.analytics import EventType
from app.models.funnel import (
    FunnelFineGapWindowRollup,
    FunnelGapRollup,
    FunnelGapWindowRollup,
    FunnelPending,
    FunnelRollup,
    FunnelStep,
    FunnelValueWindowRollup,
    FunnelWindowRollup,
    RetentionRollup,
    UserPaidPeriod,
)
from app.services.analytics import record_event
from app.services.funnel_rebuild import rebuild_funnel
from app.services.funnel_store import catch_up
from app.services.retention import retention
from tests.funnel_helpers import History, at, column, counts, funnel

DERIVED = (
    FunnelStep, FunnelRollup, FunnelGapRollup, FunnelWindowRollup, FunnelGapWindowRollup, FunnelFineGapWindowRollup,
    FunnelValueWindowRollup, UserPaidPeriod, RetentionRollup,
)


@pytest.fixture
def h(db):
    return History(db)


def _tables(db) -> dict:
    return {m.__tablename__: sorted(tuple(row) for row in db.execute(select(*m.__table__.c))) for m in DERIVED}


def _queued(db) -> int:
    return db.scalar(select(func.count()).select_from(FunnelPending))


def test_record_event_only_queues(db, h):
    user = h.user("2026-11-02 10:00")
    h.order(user, "2026-11-02 10:30", "2026-11-02 11:00")
    assert _queued(db) == 3  # signup, checkout, payment
    assert db.scalar(select(func.count()).select_from(FunnelStep)) == 0
    assert counts(funnel(db, "2026-11-02", "2026-11-02")) == [1, 1, 1, 0]


def test_catch_up_applies_the_queue_as_a_rebuild_would(db, h):
    """Events for entrants that already have stored rows (a second order, a late checkout) are queued again."""
    first = h.user("2026-11-02 10:00")
    h.order(first, "2026-11-02 10:30", "2026-11-02 11:00", "2026-11-02 12:00")
    second = h.user("2026-11-03 09:00", verified="2026-11-03 09:01")
    assert catch_up(db, limit=2) == 2  # part of the queue: the rest is merged at query time
    assert _queued(db) == 3
    mid = funnel(db, "2026-11-01", "2026-11-30")
    assert counts(mid) == [2, 1, 1, 1]
    late = h.order(second, None, "2026-11-04 09:00")  # a payment before its checkout
    record_event(db, EventType.CHECKOUT_STARTED, user_id=second.id, order_id=late.id, plan_id=h.plan.id, currency="JPY",
                 occurred_at=at("2026-11-03 12:00"))
    h.order(first, "2026-11-20 10:00", "2026-11-20 10:10")  # a repeat purchase: retention changes
    live = funnel(db, "2026-11-01", "2026-11-30")
    assert counts(live) == [2, 2, 2, 1]
    assert column(live, "median_seconds") == [None, 1800.0, 1800.0, 3600.0]
    cohorts = retention(db, interval="week", start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 22), tz="UTC")
    assert [(c.size, c.retained) for c in cohorts.cohorts] == [(2, [0, 1]), (0, [0]), (0, [])]
    while catch_up(db, limit=3):
        pass
    assert _queued(db) == 0
    assert funnel(db, "2026-11-01", "2026-11-30").funnel == live.funnel
    assert retention(db, interval="week", start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 22), tz="UTC") == cohorts
    caught_up = _tables(db)
    rebuild_funnel(db)
    assert _tables(db) == caught_up


def test_verification_is_queued(db, h):
    from app.services.funnel_store import mark_verified

    user = h.user("2026-11-02 10:00")
    catch_up(db)
    mark_verified(db, user, at("2026-11-02 10:05"))
    assert _queued(db) == 1
    result = funnel(db, "2026-11-02", "2026-11-02", with_verified=True)
    assert counts(result) == [1, 1, 0, 0, 0]
    assert column(result, "median_seconds")[1] == 300.0
    catch_up(db)
    assert funnel(db, "2026-11-02", "2026-11-02", with_verified=True).funnel == result.funnel
