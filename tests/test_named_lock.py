"""The shipper's named lock: one holder at a time across connections, released when it ends."""

import pytest

from app.services import named_lock, warehouse_shipper


def test_one_holder_at_a_time_and_released_after(engine):
    with engine.connect() as first, engine.connect() as second:
        with named_lock.held(first, "test_lock") as mine:
            assert mine is True
            with named_lock.held(second, "test_lock") as theirs:
                assert theirs is False
            with named_lock.held(second, "other_lock") as other:
                assert other is True  # another name is another lock
        with named_lock.held(second, "test_lock") as now_mine:
            assert now_mine is True


def test_a_failed_transaction_still_releases(engine):
    with engine.connect() as first, engine.connect() as second:
        with pytest.raises(Exception):
            with named_lock.held(first, "test_lock"):
                first.exec_driver_sql("SELECT * FROM no_such_table")
        with named_lock.held(second, "test_lock") as mine:
            assert mine is True


def test_a_shipping_pass_is_skipped_while_another_worker_holds_the_lock(engine):
    with engine.connect() as other, named_lock.held(other, warehouse_shipper.LOCK_NAME) as theirs:
        assert theirs is True
        assert warehouse_shipper.ship_once() is None  # skipped: nothing opened, nothing shipped
