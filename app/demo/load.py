"""Write generated demo activity in bulk: the same rows and rollups the live flows would write."""

import json

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from tqdm import tqdm

from app.config import get_settings
from app.db import Base, utc_now
from app.demo import rows as demo_rows
from app.demo.bulk import BulkWriter
from app.demo.generate import PAID, PAYMENT_FAILED, DemoData
from app.models.analytics import AnalyticsEvent
from app.models.plan import Plan
from app.models.user import User
from app.services import rollup_repo
from app.services.funnel_rebuild import rebuild_funnel

def has_data(session: Session) -> bool:
    """True when the shop already has plans, users, orders or events."""
    return any(session.scalar(select(func.count()).select_from(model)) for model in (Plan, User, AnalyticsEvent))


def delete_all(session: Session) -> None:
    """Empty every table of the shop (children first)."""
    for table in reversed(Base.metadata.sorted_tables):
        session.execute(delete(table))


def bulk_load(session: Session, data: DemoData, *, show_progress: bool = True) -> int:
    """Insert plans, inventory, users, orders, webhooks and events, then rebuild the rollups; returns rows written."""
    with tqdm(total=_row_count(data), unit="rows", disable=not show_progress, desc="demo data") as progress:
        writer = BulkWriter(session, progress)
        written = _write_all(writer, data)
        writer.finish()
    # The same set-based GROUP BY as `rebuild-rollups`: one definition of the rollup arithmetic.
    written += sum(rollup_repo.rebuild(session).values())
    # The per-entrant funnel rows need each user's events in order: recomputed by the one rebuild.
    rebuild_funnel(session)
    return written


def _row_count(data: DemoData) -> int:
    webhooks = (data.order_failed_at >= 0).sum() + demo_rows.retried(data).sum()
    refunds = (data.order_refunded_at >= 0).sum()
    return int(len(data.plans) + data.profiles_per_plan.sum() + len(data.user_signup_at) + len(data.order_user)
               + data.event_count + webhooks + refunds)


def _write_all(writer: BulkWriter, data: DemoData) -> int:
    loaded_at = demo_rows.timestamps(np.array([int(utc_now().timestamp())]))[0]
    start = demo_rows.timestamps(np.array([int(data.start.timestamp())]))[0]
    written = writer.write(
        "plans",
        ["id", "name", "region", "data_mb", "validity_days", "price_minor_units", "currency", "active", "created_at"],
        [[(i + 1, p.name, p.region, p.data_mb, p.validity_days, p.price_minor_units, p.currency, True, start)
          for i, p in enumerate(data.plans)]],
    )
    written += writer.write("users", ["id", "email", "is_admin", "created_at", "verified_at"], _user_rows(data))
    written += writer.write(
        "orders",
        ["id", "user_id", "plan_id", "status", "amount_minor_units", "currency", "payment_intent_id",
         "payment_client_secret", "created_at", "paid_at", "activated_at", "refunded_minor_units"],
        _order_rows(data),
    )
    written += writer.write(
        "esim_profiles", ["id", "plan_id", "iccid", "activation_code", "order_id", "assigned_at", "created_at"],
        _profile_rows(data, start),
    )
    written += writer.write(
        "payment_webhook_events",
        ["id", "provider", "provider_event_id", "event_type", "payload", "outcome", "received_at", "order_id"],
        [_webhook_rows(data)],
    )
    written += writer.write(
        "refunds",
        ["id", "order_id", "provider", "provider_refund_id", "amount_minor_units", "currency", "source", "refunded_at"],
        [_refund_rows(data)],
    )
    written += writer.write(
        "analytics_events",
        ["id", "event_type", "user_id", "order_id", "plan_id", "amount_minor_units", "currency", "metadata",
         "occurred_at", "created_at", "dedupe_key"],
        demo_rows.event_rows(data, loaded_at),
    )
    return written


def _user_rows(data: DemoData):
    admins = get_settings().admin_email_set
    verifies = demo_rows.verifies(data)
    for start in range(0, len(data.user_signup_at), demo_rows.CHUNK):
        stamps = demo_rows.timestamps(data.user_signup_at[start : start + demo_rows.CHUNK])
        verified = demo_rows.timestamps(data.user_signup_at[start : start + demo_rows.CHUNK] + demo_rows.VERIFY_DELAY)
        rows = []
        for offset, stamp in enumerate(stamps):
            user_id = start + offset + 1
            address = demo_rows.email(user_id)
            verified_at = verified[offset] if verifies[user_id - 1] else None
            rows.append((user_id, address, address in admins, stamp, verified_at))
        yield rows


def _order_rows(data: DemoData):
    status = demo_rows.order_status(data)
    with_intent = (data.order_failed_at >= 0) | (data.order_paid_at >= 0)
    for start in range(0, len(data.order_user), demo_rows.CHUNK):
        part = slice(start, start + demo_rows.CHUNK)
        created = demo_rows.timestamps(data.order_created_at[part])
        paid = demo_rows.timestamps(np.maximum(data.order_paid_at[part], 0))
        activated = demo_rows.timestamps(np.maximum(data.order_activated_at[part], 0))
        rows = []
        columns = zip(data.order_user[part].tolist(), data.order_plan[part].tolist(), status[part].tolist(),
                      with_intent[part].tolist(), (data.order_paid_at[part] >= 0).tolist(),
                      (data.order_activated_at[part] >= 0).tolist(), strict=True)
        for offset, (user_id, plan, state, intent, is_paid, is_active) in enumerate(columns):
            order_id = start + offset + 1
            plan_row = data.plans[plan]
            intent_id = demo_rows.intent_id(order_id) if intent else None
            rows.append((order_id, user_id, plan + 1, state, plan_row.price_minor_units, plan_row.currency, intent_id,
                         f"{intent_id}_secret_demo" if intent else None, created[offset],
                         paid[offset] if is_paid else None, activated[offset] if is_active else None,
                         int(data.order_refund_amount[order_id - 1])))
        yield rows


def _profile_rows(data: DemoData, created_at: str):
    plan_of_profile = np.repeat(np.arange(len(data.plans)), data.profiles_per_plan)
    active = np.flatnonzero(data.order_activated_at >= 0)
    order_of_profile = np.zeros(len(plan_of_profile) + 1, dtype=np.int64)
    order_of_profile[data.order_profile[active]] = active + 1
    for start in range(0, len(plan_of_profile), demo_rows.CHUNK):
        ids = np.arange(start + 1, min(start + demo_rows.CHUNK, len(plan_of_profile)) + 1)
        codes = demo_rows.iccids(ids)
        orders = order_of_profile[ids]
        assigned = demo_rows.timestamps(np.maximum(data.order_activated_at[np.maximum(orders - 1, 0)], 0))
        yield [
            (int(pid), int(plan_of_profile[pid - 1]) + 1, iccid, f"LPA:1$smdp.demo.example${iccid}",
             int(order) or None, assigned[i] if order else None, created_at)
            for i, (pid, iccid, order) in enumerate(zip(ids.tolist(), codes, orders.tolist(), strict=True))
        ]


def _refund_rows(data: DemoData) -> list[tuple]:
    """One admin refund per refunded order, ids in the order the refunds happened."""
    refunded = np.flatnonzero(data.order_refunded_at >= 0)
    refunded = refunded[np.lexsort((refunded, data.order_refunded_at[refunded]))]
    stamps = demo_rows.timestamps(data.order_refunded_at[refunded])
    return [
        (number + 1, int(index) + 1, "sandbox", demo_rows.refund_id(int(index) + 1), int(data.order_refund_amount[index]),
         data.plans[int(data.order_plan[index])].currency, "admin", stamps[number])
        for number, index in enumerate(refunded.tolist())
    ]


def _webhook_rows(data: DemoData) -> list[tuple]:
    times, kinds, ids = demo_rows.actions(data)
    keep = kinds == PAID
    keep[keep] = demo_rows.retried(data)[ids[keep] - 1]
    keep |= kinds == PAYMENT_FAILED
    stamps = demo_rows.timestamps(times[keep])
    rows = []
    for number, (kind, order_id) in enumerate(zip(kinds[keep].tolist(), ids[keep].tolist(), strict=True)):
        plan = data.plans[int(data.order_plan[order_id - 1])]
        event_id, event_type, payload = demo_rows.webhook_payload(order_id, kind, plan.price_minor_units, plan.currency)
        outcome = "paid" if kind == PAID else "payment_failed"
        rows.append((number + 1, "sandbox", event_id, event_type, json.dumps(payload), outcome, stamps[number], order_id))
    return rows
