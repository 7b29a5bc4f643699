"""What record_event (with its rollup upkeep) adds to a checkout, and four writers at once."""

import statistics
import threading
import time
from contextlib import contextmanager
from unittest import mock

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.models.plan import Plan
from app.models.user import User
from app.services import orders
from app.db import is_retryable


@contextmanager
def without_record_event():
    # The order services record their events through record_order_event (since eb8a51e).
    with mock.patch.object(orders, "record_order_event", lambda *args, **kwargs: None):
        yield


def _checkout(engine: Engine, user_id: int, plan_id: int, *, pay: bool) -> None:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        order = orders.create_order(session, session.get(User, user_id), plan_id)
        if pay:
            orders.mark_paid(session, order, source="bench", provider="sandbox")


def checkout_cost(engine: Engine, *, rounds: int = 6, per_round: int = 50) -> dict:
    """Median ms of a committed checkout transaction with and without record_event."""
    with Session(engine) as session:
        user_ids = session.scalars(select(User.id).order_by(User.id).limit(per_round)).all()
        plan_id = session.scalar(select(Plan.id).order_by(Plan.id))
    samples: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(rounds):
        for mode in ("without", "with"):
            for user_id in user_ids:
                began = time.perf_counter()
                if mode == "with":
                    _checkout(engine, user_id, plan_id, pay=False)
                else:
                    with without_record_event():
                        _checkout(engine, user_id, plan_id, pay=False)
                samples[mode].append((time.perf_counter() - began) * 1000)
    with_ms, without_ms = statistics.median(samples["with"]), statistics.median(samples["without"])
    return {"with_ms": with_ms, "without_ms": without_ms, "added_ms": with_ms - without_ms, "checkouts": len(samples["with"])}


def concurrent_writers(engine: Engine, *, writers: int = 4, per_writer: int = 150, attempts: int = 5) -> dict:
    """Each writer runs checkout + payment transactions on the same plans and day; counts retries and failures."""
    with Session(engine) as session:
        user_ids = session.scalars(select(User.id).order_by(User.id).limit(writers * 10)).all()
        plan_ids = session.scalars(select(Plan.id).order_by(Plan.id).limit(3)).all()
    stats = {"transactions": 0, "retried": 0, "failed": 0}
    lock = threading.Lock()

    def work(number: int) -> None:
        for i in range(per_writer):
            for attempt in range(attempts):
                try:
                    _checkout(engine, user_ids[(number * 10 + i) % len(user_ids)], plan_ids[i % len(plan_ids)], pay=True)
                    with lock:
                        stats["transactions"] += 1
                    break
                except Exception as exc:  # noqa: BLE001 - counted and reported, not hidden
                    with lock:
                        if is_retryable(exc) and attempt + 1 < attempts:
                            stats["retried"] += 1
                            continue
                        stats["failed"] += 1
                    break

    began = time.perf_counter()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    return {**stats, "writers": writers, "tx_per_s": stats["transactions"] / seconds}
