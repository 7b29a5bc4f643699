"""Shared set-up for the finance tests: real ECB rates for a few windows, an admin token, money events."""

import datetime as dt
import secrets
from functools import lru_cache

from app.models.analytics import EventType
from app.models.user import AuthSession
from app.services import fx
from app.services.analytics import record_event
from app.services.auth import token_hash
from tests.factories import create_order, create_plan, create_user
from tests.helpers import auth

# Windows of the bundled ECB history the tests use: a March 2025 weekend, Christmas 2025, the BGN switch to the euro.
WINDOWS = [(dt.date(2025, 3, 3), dt.date(2025, 3, 14)), (dt.date(2025, 12, 19), dt.date(2026, 1, 9))]


@lru_cache
def ecb_rates_in_windows() -> dict:
    rates = fx.read_ecb_file(fx.BUNDLED_FILE)
    return {key: rate for key, rate in rates.items() if any(start <= key[0] <= end for start, end in WINDOWS)}


def load_test_rates(db) -> None:
    fx.load_rates(db, ecb_rates_in_windows())
    db.flush()


def admin_token(db) -> dict:
    admin = create_user(db, email=f"fin-admin-{secrets.token_hex(4)}@shop.test", is_admin=True, signup=False)
    token = secrets.token_urlsafe(32)
    db.add(AuthSession(user_id=admin.id, token_hash=token_hash(token), created_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                       expires_at=dt.datetime(2999, 1, 1, tzinfo=dt.UTC)))
    db.flush()
    return auth(token)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def paid_order(db, *, price: int, currency: str, when: str, plan=None, user=None):
    """An order paid at `when` with its payment_succeeded event."""
    plan = plan or create_plan(db, price_minor_units=price, currency=currency)
    user = user or create_user(db, signup=False)
    order = create_order(db, user=user, plan=plan)
    record_event(db, EventType.PAYMENT_SUCCEEDED, user_id=user.id, order_id=order.id, plan_id=plan.id,
                 amount_minor_units=price, currency=currency, occurred_at=at(when))
    return order


def refund_event(db, order, *, amount: int, when: str, refund_id: str):
    record_event(db, EventType.PAYMENT_REFUNDED, user_id=order.user_id, order_id=order.id, plan_id=order.plan_id,
                 amount_minor_units=amount, currency=order.currency, occurred_at=at(when), fact_id=refund_id)
