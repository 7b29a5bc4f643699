"""The slow path: replay generated activity through the shop's own services, one action at a time.

It proves the bulk path right (tests compare the two) and can be chosen with
`python -m app demo-data --through-services` for small data sets.
"""

import datetime as dt

import numpy as np
from sqlalchemy.orm import Session
from tqdm import tqdm

from app.config import get_settings
from app.demo import rows as demo_rows
from app.demo.generate import ACTIVATED, CHECKOUT, PAID, PAYMENT_FAILED, REFUNDED, SIGNUP, DemoData
from app.models.esim import EsimProfile
from app.models.order import Order
from app.models.plan import Plan
from app.models.user import User
from app.services.auth import get_or_create_user
from app.services.funnel_store import mark_verified
from app.services.orders import activate_esim, create_order, handle_webhook_event, mark_paid
from app.services.refunds import ProviderRefund, apply_refund


def replay(session: Session, data: DemoData, *, show_progress: bool = True) -> None:
    """Create plans and inventory, then every signup, checkout, payment and activation in time order."""
    settings = get_settings()
    plans = [
        Plan(name=p.name, region=p.region, data_mb=p.data_mb, validity_days=p.validity_days,
             price_minor_units=p.price_minor_units, currency=p.currency, active=True, created_at=data.start)
        for p in data.plans
    ]
    session.add_all(plans)
    session.flush()
    serial = np.arange(1, int(data.profiles_per_plan.sum()) + 1)
    plan_of_profile = np.repeat(np.arange(len(plans)), data.profiles_per_plan).tolist()
    for plan_index, iccid in zip(plan_of_profile, demo_rows.iccids(serial), strict=True):
        session.add(EsimProfile(plan_id=plans[plan_index].id, iccid=iccid,
                                activation_code=f"LPA:1$smdp.demo.example${iccid}", created_at=data.start))
    session.flush()
    times, kinds, ids = demo_rows.actions(data)
    retried = demo_rows.retried(data)
    verifies = demo_rows.verifies(data)
    for at, kind, entity in tqdm(list(zip(times.tolist(), kinds.tolist(), ids.tolist(), strict=True)),
                                 disable=not show_progress, desc="demo data", unit="actions"):
        now = dt.datetime.fromtimestamp(at, dt.UTC)
        if kind == SIGNUP:
            user = get_or_create_user(session, demo_rows.email(entity), settings=settings, now=now)
            if verifies[entity - 1]:
                # Entered VERIFY_DELAY s later; the per-entrant rows do not depend on the order of writes.
                mark_verified(session, user, now + dt.timedelta(seconds=demo_rows.VERIFY_DELAY))
        elif kind == CHECKOUT:
            create_order(session, session.get(User, int(data.order_user[entity - 1])), plans[int(data.order_plan[entity - 1])].id, now=now)
        elif kind == PAYMENT_FAILED or (kind == PAID and retried[entity - 1]):
            _with_intent(session, entity)
            plan = data.plans[int(data.order_plan[entity - 1])]
            _, _, payload = demo_rows.webhook_payload(entity, kind, plan.price_minor_units, plan.currency)
            handle_webhook_event(session, payload, provider="sandbox", now=now)
        elif kind == PAID:
            mark_paid(session, _with_intent(session, entity), source="payment_intent", provider="sandbox", now=now)
        elif kind == ACTIVATED:
            activate_esim(session, session.get(Order, entity), now=now)
        elif kind == REFUNDED:
            order = session.get(Order, entity)
            refund = ProviderRefund(demo_rows.refund_id(entity), int(data.order_refund_amount[entity - 1]), order.currency, "succeeded")
            apply_refund(session, order, refund, provider="sandbox", source="admin", now=now)
    session.flush()


def _with_intent(session: Session, order_id: int) -> Order:
    """The order, with the sandbox intent its first payment attempt created."""
    order = session.get(Order, order_id)
    if order.payment_intent_id is None:
        order.payment_intent_id = demo_rows.intent_id(order_id)
        order.payment_client_secret = f"{order.payment_intent_id}_secret_demo"
        session.flush()
    return order
