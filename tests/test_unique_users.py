"""Unique users are exact: equal to a plain-Python distinct count from the bitmaps, cached or not,
after late events, out-of-order ids and direct inserts; a GET never writes the cache."""

import datetime as dt
import random

import pytest
from pyroaring import BitMap
from sqlalchemy import delete, func, insert, select, update

from app.models.analytics import FUNNEL, AnalyticsDailyUserBitmap, AnalyticsEvent, AnalyticsMonthlyUserBitmap, EventType
from app.models.user import User
from app.services import unique_users
from app.services.analytics import DayRange, record_event
from app.services.rollup_repo import rebuild as rebuild_rollups
from app.services.unique_users import count_unique_users, refresh_bitmaps
from tests.factories import create_order, create_plan, create_user

TODAY = dt.date(2025, 6, 1)
FIRST_DAY, LAST_DAY = dt.date(2025, 1, 15), dt.date(2025, 4, 10)  # two closed months and edge days
TYPES = [e.value for e in FUNNEL]
USER_BASE = 5_000_000  # explicit ids far above anything a sequence hands out in the test run
EVENT_BASE = 50_000_000


def load_random_events(db, *, users: int, per_type: dict[str, int], seed: int) -> list[tuple[str, int, dt.datetime]]:
    """Insert users and random events (bulk, then rebuild the rollups); returns (type, user id, time) of each."""
    rng = random.Random(seed)
    db.execute(insert(User), [{"id": USER_BASE + i, "email": f"u{i}@uu.test", "is_admin": False} for i in range(users)])
    span = int((dt.datetime.combine(LAST_DAY, dt.time()) - dt.datetime.combine(FIRST_DAY, dt.time())).total_seconds()) + 86_399
    start = dt.datetime.combine(FIRST_DAY, dt.time(), tzinfo=dt.UTC)
    events = []
    for event_type, count in per_type.items():
        pool = list(range(users)) if event_type == EventType.USER_SIGNUP else None
        for n in range(count):
            user = pool[n] if pool else rng.randrange(users) ** 2 // users  # some users come back often
            events.append((event_type, USER_BASE + user, start + dt.timedelta(seconds=rng.randrange(span))))
    db.execute(
        insert(AnalyticsEvent),
        [
            {"id": EVENT_BASE + i, "event_type": t, "user_id": u, "occurred_at": at, "event_metadata": {},
             "dedupe_key": f"{t}:{i}", "order_id": None, "plan_id": None}
            for i, (t, u, at) in enumerate(events)
        ],
    )
    rebuild_rollups(db)
    db.flush()
    return events


def distinct_users(events, days: DayRange) -> dict[str, int]:
    users = {t: set() for t in TYPES}
    for event_type, user_id, at in events:
        if days.start <= at.date() <= days.end:
            users[event_type].add(user_id)
    return {t: len(u) for t, u in users.items()}


def bitmap_rows(db) -> int:
    return sum(db.scalar(select(func.count()).select_from(t)) for t in (AnalyticsDailyUserBitmap, AnalyticsMonthlyUserBitmap))


@pytest.fixture
def events(db):
    unique_users.CACHE.clear()
    return load_random_events(db, users=3000, per_type={"user_signup": 3000, "checkout_started": 4000,
                                                        "payment_succeeded": 2500, "esim_activated": 2000}, seed=7)


RANGES = [
    DayRange(FIRST_DAY, LAST_DAY),
    DayRange(dt.date(2025, 2, 1), dt.date(2025, 3, 31)),  # exactly two closed months
    DayRange(dt.date(2025, 1, 20), dt.date(2025, 3, 5)),
    DayRange(dt.date(2025, 3, 3), dt.date(2025, 3, 9)),
    DayRange(dt.date(2024, 12, 1), dt.date(2025, 1, 14)),  # before the first event
]


def test_exact_without_any_cache_and_a_get_writes_nothing(db, events):
    for days in RANGES:
        assert count_unique_users(db, days, TYPES, today=TODAY) == distinct_users(events, days), days
    assert bitmap_rows(db) == 0


def test_exact_from_cached_bitmaps_days_and_closed_months(db, events):
    written = refresh_bitmaps(db, FIRST_DAY, LAST_DAY, today=TODAY)
    days_with_events = {(at.date(), t) for t, _, at in events if t != "user_signup"}
    # One bitmap per (day, type) with events, one per closed month (Feb, Mar) and type.
    assert written == len(days_with_events) + 2 * 3
    assert refresh_bitmaps(db, FIRST_DAY, LAST_DAY, today=TODAY) == 0  # nothing stale: nothing written
    months = db.scalars(select(AnalyticsMonthlyUserBitmap.month).distinct()).all()
    assert sorted(str(m)[:10] for m in months) == ["2025-02-01", "2025-03-01"]
    for days in RANGES:
        assert count_unique_users(db, days, TYPES, today=TODAY) == distinct_users(events, days), days
    unique_users.CACHE.clear()  # decoded from the stored blobs, not only from memory
    for days in RANGES:
        assert count_unique_users(db, days, TYPES, today=TODAY) == distinct_users(events, days), days


def test_a_stored_month_equals_the_union_of_its_users(db, events):
    refresh_bitmaps(db, FIRST_DAY, LAST_DAY, today=TODAY)
    blob = db.scalar(select(AnalyticsMonthlyUserBitmap.bitmap).where(
        AnalyticsMonthlyUserBitmap.month == dt.date(2025, 2, 1), AnalyticsMonthlyUserBitmap.event_type == "payment_succeeded"))
    expected = {u for t, u, at in events if t == "payment_succeeded" and at.date().month == 2}
    assert set(BitMap.deserialize(blob)) == expected


def test_late_event_in_a_closed_month_is_counted_before_any_refresh(db, events):
    refresh_bitmaps(db, FIRST_DAY, LAST_DAY, today=TODAY)
    newcomer = create_user(db, email="late@uu.test", signup=False)
    order = create_order(db, user=newcomer, plan=create_plan(db))
    late = dt.datetime(2025, 3, 14, 12, tzinfo=dt.UTC)
    record_event(db, EventType.CHECKOUT_STARTED, user_id=newcomer.id, order_id=order.id, occurred_at=late)
    db.flush()
    after = [*events, ("checkout_started", newcomer.id, late)]
    before_rows = bitmap_rows(db)
    for days in RANGES:
        assert count_unique_users(db, days, TYPES, today=TODAY) == distinct_users(after, days), days
    assert bitmap_rows(db) == before_rows
    # The refresh rewrites exactly the stale day and its month.
    assert refresh_bitmaps(db, FIRST_DAY, LAST_DAY, today=TODAY) == 2
    for days in RANGES:
        assert count_unique_users(db, days, TYPES, today=TODAY) == distinct_users(after, days), days


def test_newer_events_complete_a_stale_day_and_an_out_of_order_id_is_not_missed(db, events):
    refresh_bitmaps(db, FIRST_DAY, LAST_DAY, today=TODAY)
    day = dt.date(2025, 4, 8)  # an edge day: answered from its daily bitmap
    at = dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC)
    stored_max = db.scalar(select(AnalyticsDailyUserBitmap.max_event_id).where(
        AnalyticsDailyUserBitmap.day == day, AnalyticsDailyUserBitmap.event_type == "payment_succeeded"))
    new_users = [USER_BASE + 10_001, USER_BASE + 10_002]
    db.execute(insert(User), [{"id": u, "email": f"n{u}@uu.test", "is_admin": False} for u in new_users])
    # A newer id (after the bitmap's max id), then an id below it that "committed late".
    used = set(db.scalars(select(AnalyticsEvent.id)))
    low_id = next(i for i in range(stored_max - 1, 0, -1) if i not in used)
    rows = [(EVENT_BASE + 900_000, new_users[0]), (low_id, new_users[1])]
    days = DayRange(dt.date(2025, 4, 1), LAST_DAY)
    for n, (event_id, user_id) in enumerate(rows):
        db.execute(insert(AnalyticsEvent), [{"id": event_id, "event_type": "payment_succeeded", "user_id": user_id,
                                             "occurred_at": at, "event_metadata": {}, "dedupe_key": f"late:{n}"}])
        rebuild_rollups(db)
        events = [*events, ("payment_succeeded", user_id, at)]
        assert count_unique_users(db, days, TYPES, today=TODAY) == distinct_users(events, days)
    assert bitmap_rows(db) > 0


def test_rebuild_after_direct_changes_equals_a_recount(db, events):
    refresh_bitmaps(db, FIRST_DAY, LAST_DAY, today=TODAY)
    # Move one checkout to another user without changing any count: only a rebuild can see it.
    moved_id = db.scalar(select(AnalyticsEvent.id).where(AnalyticsEvent.event_type == "checkout_started").order_by(AnalyticsEvent.id))
    moved = db.execute(select(AnalyticsEvent.user_id, AnalyticsEvent.occurred_at).where(AnalyticsEvent.id == moved_id)).one()
    db.execute(insert(User), [{"id": USER_BASE + 20_000, "email": "moved@uu.test", "is_admin": False}])
    db.execute(update(AnalyticsEvent).where(AnalyticsEvent.id == moved_id).values(user_id=USER_BASE + 20_000))
    index = next(i for i, (t, u, at) in enumerate(events)
                 if t == "checkout_started" and u == moved.user_id and at == moved.occurred_at)
    changed = [*events[:index], ("checkout_started", USER_BASE + 20_000, events[index][2]), *events[index + 1:]]
    unique_users.rebuild_bitmaps(db, FIRST_DAY, LAST_DAY, today=TODAY)
    for days in RANGES:
        assert count_unique_users(db, days, TYPES, today=TODAY) == distinct_users(changed, days), days


def test_bitmaps_of_an_emptied_day_are_not_used(db, events):
    refresh_bitmaps(db, FIRST_DAY, LAST_DAY, today=TODAY)
    day = dt.date(2025, 1, 16)
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    db.execute(delete(AnalyticsEvent).where(AnalyticsEvent.occurred_at >= start,
                                            AnalyticsEvent.occurred_at < start + dt.timedelta(days=1)))
    rebuild_rollups(db)
    remaining = [e for e in events if e[2].date() != day]
    for days in RANGES:
        assert count_unique_users(db, days, TYPES, today=TODAY) == distinct_users(remaining, days), days
