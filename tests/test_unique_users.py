"""Unique users: the exact path equals COUNT(DISTINCT); the sketch path is within 2 % and never stale."""

import datetime as dt
import random

import numpy as np
import pytest
from datasketch import HyperLogLogPlusPlus
from sqlalchemy import delete, insert, select

from app.models.analytics import FUNNEL, AnalyticsDailySketch, AnalyticsEvent, AnalyticsMonthlySketch, EventType
from app.models.user import User
from app.services import hll
from app.services.analytics import DayRange, record_event
from app.services.rollups import rebuild_rollups
from app.services.unique_users import count_unique_users, exact_unique_users
from tests.factories import create_order, create_plan, create_user

TODAY = dt.date(2025, 6, 1)
FIRST_DAY, LAST_DAY = dt.date(2025, 1, 15), dt.date(2025, 4, 10)  # two closed months and edge days
TYPES = [e.value for e in FUNNEL]
USER_BASE = 5_000_000  # explicit ids far above anything a sequence hands out in the test run


def load_random_events(db, *, users: int, per_type: dict[str, int], seed: int, skewed: bool = True) -> list[tuple[str, int, dt.datetime]]:
    """Insert users and random events (bulk, no rollups); returns (type, user id, time) of each."""
    rng = random.Random(seed)
    db.execute(insert(User), [{"id": USER_BASE + i, "email": f"u{i}@uu.test", "is_admin": False} for i in range(users)])
    span = int((dt.datetime.combine(LAST_DAY, dt.time()) - dt.datetime.combine(FIRST_DAY, dt.time())).total_seconds()) + 86_399
    start = dt.datetime.combine(FIRST_DAY, dt.time(), tzinfo=dt.UTC)
    events = []
    for event_type, count in per_type.items():
        pool = list(range(users)) if event_type == EventType.USER_SIGNUP else None
        for n in range(count):
            user = pool[n] if pool else rng.randrange(users)
            if skewed and not pool:
                user = user**2 // users  # some users come back often
            events.append((event_type, USER_BASE + user, start + dt.timedelta(seconds=rng.randrange(span))))
    db.execute(
        insert(AnalyticsEvent),
        [
            {"event_type": t, "user_id": u, "occurred_at": at, "event_metadata": {}, "dedupe_key": f"{t}:{i}",
             "order_id": None, "plan_id": None}
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


def counts_in(events, days: DayRange) -> dict[str, int]:
    counts = dict.fromkeys(TYPES, 0)
    for event_type, _, at in events:
        if days.start <= at.date() <= days.end:
            counts[event_type] += 1
    return counts


@pytest.fixture
def sketch_threshold(settings, monkeypatch):
    monkeypatch.setattr(settings, "analytics_exact_distinct_max_events", 0)
    return settings


def test_exact_path_equals_count_distinct_on_random_data(db, settings):
    events = load_random_events(db, users=400, per_type={"user_signup": 400, "checkout_started": 900,
                                                         "payment_succeeded": 600, "esim_activated": 500}, seed=7)
    rng = random.Random(3)
    for _ in range(12):
        a, b = sorted(FIRST_DAY + dt.timedelta(days=rng.randrange(-5, 90)) for _ in range(2))
        days = DayRange(a, b)
        unique, approximate = count_unique_users(db, days, TYPES, counts_in(events, days), today=TODAY)
        assert approximate is False
        assert unique == distinct_users(events, days)
        assert exact_unique_users(db, days, TYPES) == distinct_users(events, days)


@pytest.fixture
def big_events(db, sketch_threshold):
    # Enough distinct users that HLL++ leaves linear counting (> 11,500 at p=14).
    return load_random_events(db, users=30_000, per_type={"user_signup": 30_000, "checkout_started": 30_000,
                                                          "payment_succeeded": 24_000, "esim_activated": 20_000},
                              seed=11, skewed=False)


def test_sketches_are_within_two_percent_and_say_approximate(db, big_events):
    for days in (DayRange(FIRST_DAY, LAST_DAY), DayRange(dt.date(2025, 2, 1), dt.date(2025, 3, 31)),
                 DayRange(dt.date(2025, 1, 20), dt.date(2025, 3, 5)), DayRange(dt.date(2025, 3, 3), dt.date(2025, 3, 9))):
        expected = distinct_users(big_events, days)
        unique, approximate = count_unique_users(db, days, TYPES, counts_in(big_events, days), today=TODAY)
        assert approximate is True
        assert unique["user_signup"] == expected["user_signup"]  # one signup per user: exact
        for event_type in TYPES[1:]:
            assert abs(unique[event_type] - expected[event_type]) <= 0.02 * expected[event_type], (days, event_type)
    months = db.scalars(select(AnalyticsMonthlySketch.month).distinct()).all()
    assert sorted(str(m)[:10] for m in months) == ["2025-02-01", "2025-03-01"]


def test_cached_sketches_answer_the_same_and_a_new_event_makes_them_stale(db, big_events):
    days = DayRange(FIRST_DAY, LAST_DAY)
    first, _ = count_unique_users(db, days, TYPES, counts_in(big_events, days), today=TODAY)
    again, _ = count_unique_users(db, days, TYPES, counts_in(big_events, days), today=TODAY)
    assert again == first

    newcomer = create_user(db, email="late@uu.test", signup=False)
    order = create_order(db, user=newcomer, plan=create_plan(db))
    late = dt.datetime(2025, 3, 14, 12, tzinfo=dt.UTC)
    record_event(db, EventType.CHECKOUT_STARTED, user_id=newcomer.id, order_id=order.id, occurred_at=late)
    events = [*big_events, ("checkout_started", newcomer.id, late)]
    after, _ = count_unique_users(db, days, TYPES, counts_in(events, days), today=TODAY)

    day_sketch = db.scalar(select(AnalyticsDailySketch.event_count).where(
        AnalyticsDailySketch.day == late.date(), AnalyticsDailySketch.event_type == "checkout_started"))
    month_sketch = db.scalar(select(AnalyticsMonthlySketch.event_count).where(
        AnalyticsMonthlySketch.month == dt.date(2025, 3, 1), AnalyticsMonthlySketch.event_type == "checkout_started"))
    assert day_sketch == sum(1 for t, _, at in events if t == "checkout_started" and at.date() == late.date())
    assert month_sketch == sum(1 for t, _, at in events if t == "checkout_started" and at.date().month == 3)
    # The refreshed cache answers exactly what sketches built from scratch answer.
    db.execute(delete(AnalyticsDailySketch))
    db.execute(delete(AnalyticsMonthlySketch))
    fresh, _ = count_unique_users(db, days, TYPES, counts_in(events, days), today=TODAY)
    assert after == fresh
    assert abs(after["checkout_started"] - distinct_users(events, days)["checkout_started"]) <= 0.02 * distinct_users(events, days)["checkout_started"]


def test_small_ranges_stay_exact_under_the_threshold(db, settings, monkeypatch):
    events = load_random_events(db, users=300, per_type={"user_signup": 300, "checkout_started": 500}, seed=5)
    days = DayRange(FIRST_DAY, LAST_DAY)
    counts = counts_in(events, days)
    monkeypatch.setattr(settings, "analytics_exact_distinct_max_events", sum(counts.values()))
    assert count_unique_users(db, days, TYPES, counts, today=TODAY) == (distinct_users(events, days), False)
    monkeypatch.setattr(settings, "analytics_exact_distinct_max_events", sum(counts.values()) - 1)
    assert count_unique_users(db, days, TYPES, counts, today=TODAY)[1] is True


def test_registers_match_datasketch_and_survive_storage():
    ids = np.arange(1, 30_001, dtype=np.int64) * 7919
    reference = HyperLogLogPlusPlus(p=hll.P, hashfunc=lambda user_id: int(hll.hash64(np.array([user_id]))[0]))
    for user_id in ids[:3000].tolist():
        reference.update(user_id)
    assert (hll.registers(ids[:3000]) == reference.reg).all()
    for n in (0, 1, 3000, 30_000):  # empty, sparse and dense encodings
        regs = hll.registers(ids[:n])
        assert (hll.from_bytes(hll.to_bytes(regs)) == regs).all()
    assert abs(hll.estimate(hll.registers(ids)) - 30_000) <= 0.02 * 30_000
    halves = [hll.registers(ids[:20_000]), hll.to_bytes(hll.registers(ids[10_000:])), hll.to_bytes(hll.registers(ids[:50]))]
    assert (hll.union(halves) == hll.registers(ids)).all()  # arrays, dense and sparse blobs
