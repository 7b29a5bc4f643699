"""Kept month sums of the value rollup: used while the month's token stays, dropped by every change to it."""

import datetime as dt

from app.services import funnel_month_cache
from app.services.funnel_rebuild import rebuild_funnel
from app.services.funnel_store import bump_months, catch_up
from tests.funnel_helpers import History, at, funnel

OCT, NOV = dt.date(2026, 10, 1), dt.date(2026, 11, 1)


def _drain(db):
    while catch_up(db):
        pass


def test_month_sums_are_kept_until_their_token_changes(db):
    funnel_month_cache.clear()
    bump_months(db, [OCT, NOV])
    asked = []

    def read(months):
        asked.append(list(months))
        return {month: {"read": len(asked)} for month in months}

    connection = db.connection()
    assert funnel_month_cache.month_sums(connection, "shape", [OCT, NOV], read) == {OCT: {"read": 1}, NOV: {"read": 1}}
    assert funnel_month_cache.month_sums(connection, "shape", [OCT, NOV], read) == {OCT: {"read": 1}, NOV: {"read": 1}}
    bump_months(db, [NOV])
    assert funnel_month_cache.month_sums(connection, "shape", [OCT, NOV], read) == {OCT: {"read": 1}, NOV: {"read": 2}}
    december = dt.date(2026, 12, 1)  # no token: read every time
    funnel_month_cache.month_sums(connection, "shape", [december], read)
    funnel_month_cache.month_sums(connection, "shape", [december], read)
    assert asked == [[OCT, NOV], [NOV], [december], [december]]
    assert funnel_month_cache.month_sums(connection, "another shape", [OCT], read) == {OCT: {"read": 5}}


def test_a_late_payment_and_a_rebuild_change_a_kept_month(db):
    """October and November are whole months of the range, read from their month rows and kept."""
    funnel_month_cache.clear()
    h = History(db)
    first = h.user("2026-10-05 10:00")
    order = h.order(first, "2026-10-05 10:10")  # checkout after 600 s, not paid yet
    h.order(h.user("2026-11-03 09:00"), "2026-11-03 09:30", "2026-11-03 10:00")
    _drain(db)
    before = funnel(db, "2026-10-01", "2026-11-30", breakdown="plan")
    assert [(s.value, [st.count for st in s.steps]) for s in before.breakdowns] == [("Japan 5 GB", [2, 2, 1, 0])]
    assert funnel_month_cache._kept  # the two months are kept
    # A payment for October's order, recorded late: the catch-up changes October's rows and its token.
    from app.models.analytics import EventType
    from app.services.analytics import record_event

    record_event(db, EventType.PAYMENT_SUCCEEDED, user_id=first.id, order_id=order.id, plan_id=h.plan.id,
                 amount_minor_units=1500, currency="JPY", occurred_at=at("2026-10-05 11:10"))
    _drain(db)
    after = funnel(db, "2026-10-01", "2026-11-30", breakdown="plan")
    japan = after.breakdowns[0]
    assert [st.count for st in japan.steps] == [2, 2, 2, 0]
    assert [st.median_seconds for st in japan.steps] == [None, 600.0, 1800.0, None]  # gaps 1800 s and 3600 s
    assert [st.p90_seconds for st in japan.steps] == [None, 1800.0, 3600.0, None]
    # A rebuild (after direct inserts, say) changes every month's token too.
    rebuild_funnel(db)
    assert funnel(db, "2026-10-01", "2026-11-30", breakdown="plan").breakdowns == after.breakdowns


def test_tokens_do_not_follow_the_global_random(db):
    """Hypothesis seeds the global random for every example: tokens drawn from it repeated after a rollback, and a
    kept month of a rolled-back example answered for the next one."""
    import random

    tokens = []
    for _ in range(2):
        random.seed(0)
        with db.begin_nested() as savepoint:
            bump_months(db, [OCT])
            tokens.append(funnel_month_cache.versions(db.connection(), [OCT])[OCT])
            savepoint.rollback()
    assert tokens[0] != tokens[1]
