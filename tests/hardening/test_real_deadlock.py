"""The error a real deadlock raises on MariaDB/PostgreSQL is one the app retries."""

import datetime as dt
import threading

import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import DBAPIError

from app.models.user import RateLimitCounter
from app.db import is_retryable
from tests.conftest import empty_tables

counters = RateLimitCounter.__table__


def bump(conn, key: str) -> None:
    conn.execute(update(counters).where(counters.c.scope == "t", counters.c.key == key).values(hits=counters.c.hits + 1))


@pytest.mark.server_db
def test_a_real_deadlock_is_classified_retryable(engine):
    window = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        conn.execute(insert(counters), [{"scope": "t", "key": k, "window_start": window, "hits": 0} for k in "ab"])
    both_hold_one = threading.Barrier(2)
    errors: list[DBAPIError] = []

    def lock_in_order(first: str, second: str) -> None:
        with engine.connect() as conn:
            try:
                with conn.begin():
                    bump(conn, first)
                    both_hold_one.wait(timeout=10)
                    bump(conn, second)  # each waits for the other's row: the server must pick a victim
            except DBAPIError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=lock_in_order, args=pair) for pair in (("a", "b"), ("b", "a"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    empty_tables(engine)
    assert len(errors) == 1, errors
    assert is_retryable(errors[0]), repr(errors[0].orig)
