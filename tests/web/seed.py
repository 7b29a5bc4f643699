"""A shop history with known figures, written through the app's services, and the
figures worked out from the same plan in plain Python (not through the API)."""

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.models.analytics import EventType
from app.models.order import OrderStatus
from app.services.analytics import record_event
from tests.factories import create_order, create_plan, create_user

HISTORY_DAYS = 60  # events on today and the 59 days before
PLANS = {
    "EU5": ("Europe 5 GB", 1999, "USD"),
    "GLOBAL1": ("Global 1 GB", 999, "USD"),
    "JP3": ("Japan 3 GB", 1500, "JPY"),
}


@dataclass(frozen=True)
class SeededOrder:
    plan: str
    paid: bool
    activated: bool


def signups_on(days_ago: int) -> int:
    return 3 if days_ago < 7 else 1


def orders_on(days_ago: int) -> list[SeededOrder]:
    """Every day one abandoned checkout, plus paid orders on a fixed rhythm."""
    orders = [SeededOrder("EU5", paid=False, activated=False)]
    if days_ago % 2 == 0:
        orders.append(SeededOrder("EU5", paid=True, activated=days_ago % 4 == 0))
    if days_ago % 3 == 0:
        orders.append(SeededOrder("GLOBAL1", paid=True, activated=True))
    if days_ago % 5 == 0:
        orders.append(SeededOrder("JP3", paid=True, activated=False))
    return orders


def day_figures(days_ago: int) -> dict:
    """Counts and revenue of one day of the plan."""
    orders = orders_on(days_ago)
    revenue: dict[str, int] = {}
    for order in orders:
        if order.paid:
            _, price, currency = PLANS[order.plan]
            revenue[currency] = revenue.get(currency, 0) + price
    return {
        "counts": {
            "user_signup": signups_on(days_ago),
            "checkout_started": len(orders),
            "payment_succeeded": sum(o.paid for o in orders),
            "esim_activated": sum(o.activated for o in orders),
        },
        "revenue": revenue,
    }


def range_figures(first_days_ago: int, last_days_ago: int) -> dict:
    """Totals over days_ago in [last_days_ago, first_days_ago] (both ends included)."""
    counts = dict.fromkeys(("user_signup", "checkout_started", "payment_succeeded", "esim_activated"), 0)
    revenue: dict[str, int] = {}
    for days_ago in range(last_days_ago, first_days_ago + 1):
        if days_ago >= HISTORY_DAYS:
            continue
        figures = day_figures(days_ago)
        for key, value in figures["counts"].items():
            counts[key] += value
        for currency, amount in figures["revenue"].items():
            revenue[currency] = revenue.get(currency, 0) + amount
    return {"counts": counts, "revenue": revenue}


def seed_shop(session: Session, today: dt.date) -> None:
    """Write the plan's users, orders and events (at noon UTC of each day)."""
    create_user(session, email="admin@shop.test", is_admin=True, signup=False)
    create_user(session, email="customer@shop.test", is_admin=False, signup=False)
    plans = {key: create_plan(session, name=name, price_minor_units=price, currency=currency) for key, (name, price, currency) in PLANS.items()}
    for days_ago in range(HISTORY_DAYS):
        noon = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(12), tzinfo=dt.UTC)
        buyers = [create_user(session, signup=False) for _ in range(signups_on(days_ago))]
        for buyer in buyers:
            record_event(session, EventType.USER_SIGNUP, user_id=buyer.id, occurred_at=noon)
        for seeded in orders_on(days_ago):
            plan = plans[seeded.plan]
            status = OrderStatus.ACTIVATED if seeded.activated else OrderStatus.PAID if seeded.paid else OrderStatus.PENDING
            order = create_order(session, user=buyers[0], plan=plan, status=status)
            common = {"user_id": buyers[0].id, "order_id": order.id, "plan_id": plan.id, "occurred_at": noon}
            money = {"amount_minor_units": plan.price_minor_units, "currency": plan.currency}
            record_event(session, EventType.CHECKOUT_STARTED, **common, **money)
            if seeded.paid:
                record_event(session, EventType.PAYMENT_SUCCEEDED, **common, **money)
            if seeded.activated:
                record_event(session, EventType.ESIM_ACTIVATED, **common)
