"""Shipping analytics_events to ClickHouse: twice, killed mid-batch, ids committed out of order.

Each test runs on embedded chDB, and on a real server and a 2-shard cluster when
TEST_CLICKHOUSE_URL / TEST_CLICKHOUSE_CLUSTER_URL are set (see tests/warehouse_support.py).
"""

import datetime as dt

import pytest
from sqlalchemy import func, insert, select

from app.models.analytics import AnalyticsEvent, EventType
from app.services.analytics import record_event
from app.services import warehouse_rollups as rollups
from app.services.warehouse import EVENTS, Warehouse, _read_batch, event_columns
from tests.factories import create_order, create_plan, create_user
from tests.warehouse_support import TARGETS, fresh_warehouse, target_config

START = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(params=TARGETS)
def warehouse(request) -> Warehouse:
    return fresh_warehouse(*target_config(request.param))


def seed_funnel(db, users: int) -> None:
    """Per user: signup, checkout, payment of 1000 + user index cents in USD; 41 events for 10 users, one hour apart."""
    plan = create_plan(db, name="Sync plan")
    for i in range(users):
        at = START + dt.timedelta(hours=i)
        user = create_user(db, now=at)
        order = create_order(db, user=user, plan=plan)
        record_event(db, EventType.CHECKOUT_STARTED, user_id=user.id, order_id=order.id, plan_id=plan.id,
                     amount_minor_units=1000 + i, currency="USD", occurred_at=at)
        record_event(db, EventType.PAYMENT_SUCCEEDED, user_id=user.id, order_id=order.id, plan_id=plan.id,
                     amount_minor_units=1000 + i, currency="usd", metadata={"payment_intent_id": f"pi_{i}\t'x"},
                     occurred_at=at)
    db.flush()


def source_counts(db) -> dict[str, int]:
    e = AnalyticsEvent
    return dict(db.execute(select(e.event_type, func.count()).group_by(e.event_type)).all())


def warehouse_counts(warehouse: Warehouse, *, final: bool = True) -> dict[str, int]:
    table = f"{warehouse.events} FINAL" if final else warehouse.events
    return dict(warehouse.client.rows(f"SELECT event_type, count() FROM {table} GROUP BY event_type"))


def rollup_counts(warehouse: Warehouse, name: str = rollups.DAILY) -> dict[str, int]:
    """Events per type in a count rollup the reports read (its current row per key)."""
    period = rollups.COUNT_TABLES[name]
    current = rollups.current_counts(warehouse.rollup(name), period, "1")
    return dict(warehouse.client.rows(f"SELECT event_type, sum(event_count) FROM {current} GROUP BY event_type"))


def rollup_unique_users(warehouse: Warehouse, name: str = rollups.DAILY_USERS) -> dict[str, int]:
    """Distinct users per type as the reports read them: a user-set rollup's periods merged."""
    function = warehouse.user_set_function
    return dict(warehouse.client.rows(f"SELECT event_type, {function}Merge(users) FROM {warehouse.rollup(name)} GROUP BY event_type"))


def recount_unique_users(warehouse: Warehouse) -> dict[str, int]:
    return dict(warehouse.client.rows(f"SELECT event_type, uniqExact(user_id) FROM {warehouse.events} GROUP BY event_type"))


def source_unique_users(db) -> dict[str, int]:
    e = AnalyticsEvent
    return dict(db.execute(select(e.event_type, func.count(func.distinct(e.user_id))).group_by(e.event_type)).all())


def assert_rollups_equal_a_recount(db, warehouse: Warehouse) -> None:
    """Counts and unique users from the daily and monthly rollups equal the deduplicated events and the shop's own."""
    assert warehouse_counts(warehouse) == rollup_counts(warehouse) == rollup_counts(warehouse, rollups.MONTHLY) == source_counts(db)
    assert rollup_unique_users(warehouse) == rollup_unique_users(warehouse, rollups.MONTHLY_USERS) \
        == recount_unique_users(warehouse) == source_unique_users(db)


def raw_rows(warehouse: Warehouse) -> int:
    return warehouse.client.rows(f"SELECT count() FROM {warehouse.events}")[0][0]


def test_a_sync_run_twice_ships_each_event_once(db, warehouse):
    seed_funnel(db, 10)
    first = warehouse.sync(db.connection(), batch_size=7)
    second = warehouse.sync(db.connection(), batch_size=7)
    assert source_counts(db) == {"user_signup": 10, "checkout_started": 10, "payment_succeeded": 10}
    assert_rollups_equal_a_recount(db, warehouse)
    assert rollup_unique_users(warehouse) == {"user_signup": 10, "checkout_started": 10, "payment_succeeded": 10}
    assert raw_rows(warehouse) == 30  # the second pass inserted nothing, so no duplicate waits for a merge
    assert (first.shipped, second.shipped, second.skipped_duplicates) == (30, 0, 30)
    max_id = db.scalar(select(func.max(AnalyticsEvent.id)))
    assert first.last_id == second.last_id == warehouse.cursor().last_id == max_id
    revenue = warehouse.client.rows(
        f"SELECT currency, sum(amount_minor_units) FROM {warehouse.events} FINAL WHERE event_type = 'payment_succeeded' GROUP BY currency"
    )
    assert revenue == [("USD", 10 * 1000 + sum(range(10)))]  # 10,045: currency upper-cased by record_event
    payment = warehouse.client.rows(f"SELECT metadata FROM {warehouse.events} WHERE event_type = 'payment_succeeded' AND amount_minor_units = 1003")
    assert payment == [('{"payment_intent_id": "pi_3\\t\'x"}',)]


def test_status_shows_rows_lag_and_the_last_shipped_id(db, warehouse):
    seed_funnel(db, 4)
    warehouse.sync(db.connection())
    seed_funnel(db, 2)  # 6 events more, not shipped yet
    later = warehouse.cursor().caught_up_at + dt.timedelta(seconds=90)
    status = warehouse.status(db.connection(), now=lambda: later)
    assert (status.warehouse_rows, status.source_rows, status.lag_events) == (12, 18, 6)
    assert status.last_id == status.source_max_id - 6
    assert status.lag_seconds == 90


class Killed(Exception):
    pass


def test_a_sync_killed_after_an_insert_and_before_its_cursor_resumes_without_duplicates(db, warehouse, monkeypatch):
    seed_funnel(db, 10)
    saves = []
    real_save = warehouse._save_cursor

    def save_then_die(cursor):
        saves.append(cursor.last_id)
        if len(saves) == 2:
            raise Killed  # batch 2 is in ClickHouse, its cursor is not
        real_save(cursor)

    monkeypatch.setattr(warehouse, "_save_cursor", save_then_die)
    with pytest.raises(Killed):
        warehouse.sync(db.connection(), batch_size=8, trail_ids=0)
    monkeypatch.setattr(warehouse, "_save_cursor", real_save)
    assert raw_rows(warehouse) == 16 and warehouse.cursor().last_id == saves[0]
    result = warehouse.sync(db.connection(), batch_size=8, trail_ids=0)
    assert (result.shipped, result.skipped_duplicates) == (14, 8)
    assert_rollups_equal_a_recount(db, warehouse)
    assert raw_rows(warehouse) == 30


def test_a_sync_killed_inside_an_insert_resumes_and_counts_each_event_once(db, warehouse, monkeypatch):
    seed_funnel(db, 10)
    real_insert = warehouse.client.insert_columns
    calls = []

    def half_then_die(table, columns):
        calls.append(table)
        if calls.count(EVENTS) == 2 and table == EVENTS:
            half = len(columns["id"]) // 2
            real_insert(table, {name: values[:half] for name, values in columns.items()})  # the first half reached the server
            raise Killed
        real_insert(table, columns)

    monkeypatch.setattr(warehouse.client, "insert_columns", half_then_die)
    with pytest.raises(Killed):
        warehouse.sync(db.connection(), batch_size=8)
    monkeypatch.setattr(warehouse.client, "insert_columns", real_insert)
    assert raw_rows(warehouse) == 8 + 4
    warehouse.sync(db.connection(), batch_size=8)
    assert_rollups_equal_a_recount(db, warehouse)
    assert raw_rows(warehouse) == 30


def test_events_committed_out_of_id_order_are_shipped_by_the_trailing_window(db, warehouse):
    """Id 5 commits after 6..9 were shipped (a slow transaction): the next pass re-reads the window and ships it."""
    user = create_user(db, signup=False)
    base = db.scalar(select(func.coalesce(func.max(AnalyticsEvent.id), 0))) + 1000

    def event(offset: int) -> dict:
        return {
            "id": base + offset, "event_type": "user_signup", "user_id": user.id, "event_metadata": {},
            "occurred_at": START + dt.timedelta(minutes=offset), "created_at": START, "dedupe_key": f"late:{base + offset}",
        }

    db.execute(insert(AnalyticsEvent), [event(i) for i in (1, 2, 3, 4, 6, 7, 8, 9)])
    assert warehouse.sync(db.connection(), trail_ids=100).shipped == 8
    db.execute(insert(AnalyticsEvent), [event(5)])
    late = warehouse.sync(db.connection(), trail_ids=100)
    assert (late.shipped, late.skipped_duplicates, late.last_id) == (1, 8, base + 9)
    # An aggregate: 18.16 refuses a plain SELECT ... FINAL ... ORDER BY on a Distributed table.
    rows = warehouse.client.rows(f"SELECT id, count() FROM {warehouse.events} FINAL GROUP BY id ORDER BY id")
    assert rows == [(base + i, 1) for i in range(1, 10)]
    assert rollup_counts(warehouse) == rollup_counts(warehouse, rollups.MONTHLY) == {"user_signup": 9}
    assert rollup_unique_users(warehouse) == rollup_unique_users(warehouse, rollups.MONTHLY_USERS) == {"user_signup": 1}


def test_sync_from_scratch_refills_a_dropped_warehouse(db, warehouse):
    seed_funnel(db, 3)
    warehouse.sync(db.connection())
    warehouse.drop()
    warehouse.init()
    assert warehouse.cursor().last_id == 0  # the cursor went with the data
    assert warehouse.sync(db.connection()).shipped == 9
    assert warehouse_counts(warehouse) == {"user_signup": 3, "checkout_started": 3, "payment_succeeded": 3}


def test_two_shippers_inserting_the_same_batch_count_each_event_once(db, warehouse):
    """Both checked the ids before either inserted: every row lands twice, the rollups still count it once."""
    seed_funnel(db, 10)
    warehouse.sync(db.connection())
    rows = _read_batch(db.connection(), 0, 1000)
    warehouse.client.insert_columns(EVENTS, event_columns(rows, 7))
    warehouse.refresh_daily({r[8].date() for r in rows})  # read as naive UTC
    assert raw_rows(warehouse) == 60
    assert_rollups_equal_a_recount(db, warehouse)
