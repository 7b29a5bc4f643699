"""Plain keyword factories for test data, written through the app's own services."""

import datetime as dt
import itertools

from sqlalchemy.orm import Session

from app.models.analytics import EventType
from app.models.esim import EsimProfile
from app.models.order import Order, OrderStatus
from app.models.plan import Plan
from app.models.user import User
from app.services.analytics import record_event
from tests.helpers import valid_iccid

_serial = itertools.count(1)


def create_user(session: Session, *, email: str | None = None, is_admin: bool = False, signup: bool = True, now: dt.datetime | None = None) -> User:
    user = User(email=email or f"user{next(_serial)}@shop.test", is_admin=is_admin)
    session.add(user)
    session.flush()
    if signup:
        record_event(session, EventType.USER_SIGNUP, user_id=user.id, occurred_at=now)
    return user


def create_plan(session: Session, *, name: str | None = None, price_minor_units: int = 1999, currency: str = "USD", region: str = "Europe", active: bool = True) -> Plan:
    plan = Plan(
        name=name or f"Plan {next(_serial)}",
        region=region,
        data_mb=5120,
        validity_days=30,
        price_minor_units=price_minor_units,
        currency=currency,
        active=active,
    )
    session.add(plan)
    session.flush()
    return plan


def create_profiles(session: Session, *, plan: Plan, count: int) -> list[EsimProfile]:
    profiles = [
        EsimProfile(plan_id=plan.id, iccid=valid_iccid(f"8944{next(_serial):014d}"), activation_code=f"LPA:1$smdp.test${next(_serial)}")
        for _ in range(count)
    ]
    session.add_all(profiles)
    session.flush()
    return profiles


def create_order(session: Session, *, user: User, plan: Plan, status: OrderStatus = OrderStatus.PENDING, payment_intent_id: str | None = None) -> Order:
    order = Order(
        user_id=user.id,
        plan_id=plan.id,
        status=status,
        amount_minor_units=plan.price_minor_units,
        currency=plan.currency,
        payment_intent_id=payment_intent_id,
    )
    session.add(order)
    session.flush()
    return order
