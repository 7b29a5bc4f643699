"""Writing funnel histories with exact timestamps, through record_event (the live write path)."""

import datetime as dt

from app.models.analytics import EventType
from app.models.order import Order
from app.models.user import User
from app.services.analytics import record_event
from app.services.funnel_query import FunnelQuery, SqlFunnelEngine
from tests.factories import create_plan

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    """'2026-11-02 10:00[:00[.ffffff]]' as an aware UTC datetime."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


class History:
    def __init__(self, db):
        self.db = db
        self.plan = create_plan(db, name="Japan 5 GB", region="Asia", currency="JPY", price_minor_units=1500)
        self.n = 0

    def user(self, signup: str | None, *, email: str | None = None, is_admin: bool = False, verified: str | None = None) -> User:
        self.n += 1
        user = User(email=email or f"funnel{self.n}@shop.test", is_admin=is_admin, verified_at=at(verified) if verified else None)
        self.db.add(user)
        self.db.flush()
        if signup:
            record_event(self.db, EventType.USER_SIGNUP, user_id=user.id, occurred_at=at(signup))
        return user

    def order(self, user: User, checkout: str | None, paid: str | None = None, activated: str | None = None, *, plan=None) -> Order:
        plan = plan or self.plan
        order = Order(user_id=user.id, plan_id=plan.id, amount_minor_units=plan.price_minor_units, currency=plan.currency)
        self.db.add(order)
        self.db.flush()
        common = {"user_id": user.id, "order_id": order.id, "plan_id": plan.id}
        if checkout:
            record_event(self.db, EventType.CHECKOUT_STARTED, **common, currency=plan.currency, occurred_at=at(checkout))
        if paid:
            record_event(self.db, EventType.PAYMENT_SUCCEEDED, **common, amount_minor_units=plan.price_minor_units, currency=plan.currency, occurred_at=at(paid))
        if activated:
            record_event(self.db, EventType.ESIM_ACTIVATED, **common, occurred_at=at(activated))
        return order


def funnel(db, start: str, end: str, *, now: str = "2026-12-02 12:00", **kwargs):
    """The funnel through both paths of the SQL engine; asserts they agree and returns the result."""
    query = FunnelQuery(start=dt.date.fromisoformat(start), end=dt.date.fromisoformat(end), now=at(now), **kwargs)
    fast = SqlFunnelEngine().funnel(db, query)
    exact = SqlFunnelEngine(use_rollups=False).funnel(db, query)
    assert fast.funnel == exact.funnel, (fast.source, fast.funnel, exact.funnel)
    assert fast.breakdowns == exact.breakdowns, (fast.source, fast.breakdowns, exact.breakdowns)
    assert SqlFunnelEngine().step_counts(db, query) == [step.count for step in exact.funnel]  # the overview's counts
    return exact


def counts(result) -> list[int]:
    return [s.count for s in result.funnel]


def column(result, name: str) -> list:
    return [getattr(s, name) for s in result.funnel]
