"""The database rows of generated demo activity, exactly as the live flows write them."""

import datetime as dt
import json
from collections.abc import Iterator

import numpy as np

from app.demo.catalog import FIRST_NAMES, LAST_NAMES
from app.demo.generate import ACTIVATED, CHECKOUT, DAY, EVENT_TYPES, PAID, PAYMENT_FAILED, REFUNDED, SIGNUP, DemoData

CHUNK = 50_000


def timestamps(seconds: np.ndarray) -> list[str]:
    """Epoch seconds as naive-UTC text every database accepts (and SQLite's storage format)."""
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="us")
    return np.char.replace(text, "T", " ").tolist()


VERIFY_DELAY = 45  # seconds from asking for a login code to entering it


def verifies(data) -> np.ndarray:
    """Per user (index = id - 1): verifies its login code; all buyers, and 11 in 12 of the others."""
    ids = np.arange(1, len(data.user_signup_at) + 1)
    buyer = np.zeros(len(ids), dtype=bool)
    buyer[data.order_user - 1] = True
    return buyer | (ids % 12 != 0)


def email(user_id: int) -> str:
    return f"{FIRST_NAMES[user_id % 26]}.{LAST_NAMES[(user_id // 26) % 16]}.{user_id}@example.com"


def iccids(profile_ids: np.ndarray) -> list[str]:
    """19-digit ICCIDs starting 8988 with a valid Luhn check digit."""
    body = np.char.add("89880", np.char.zfill(profile_ids.astype(str), 13))
    digits = np.frombuffer(body.astype("S18").tobytes(), dtype=np.uint8).reshape(-1, 18).astype(np.int64) - 48
    doubled = digits[:, ::-1][:, 0::2] * 2  # rightmost body digit is doubled once the check digit is appended
    total = (doubled - 9 * (doubled > 9)).sum(axis=1) + digits[:, ::-1][:, 1::2].sum(axis=1)
    check = (10 - total % 10) % 10
    return np.char.add(body, check.astype(str)).tolist()


def intent_id(order_id: int) -> str:
    return f"pi_demo_{order_id:09d}"


def refund_id(order_id: int) -> str:
    return f"re_demo_{order_id:09d}"


def order_status(data: DemoData) -> np.ndarray:
    status = np.full(len(data.order_user), "pending", dtype=object)
    status[data.order_failed_at >= 0] = "payment_failed"
    status[data.order_paid_at >= 0] = "paid"
    status[data.order_activated_at >= 0] = "activated"
    full = (data.order_refunded_at >= 0) & (data.order_refund_amount == np.array([p.price_minor_units for p in data.plans])[data.order_plan])
    status[full] = "refunded"
    return status


def retried(data: DemoData) -> np.ndarray:
    return (data.order_failed_at >= 0) & (data.order_paid_at >= 0)


def actions(data: DemoData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every action as (time, kind, user or order id), sorted the way the shop lived them."""
    order_ids = np.arange(1, len(data.order_user) + 1)
    parts = [
        (data.user_signup_at, SIGNUP, np.arange(1, len(data.user_signup_at) + 1)),
        (data.order_created_at, CHECKOUT, order_ids),
        (data.order_failed_at, PAYMENT_FAILED, order_ids),
        (data.order_paid_at, PAID, order_ids),
        (data.order_activated_at, ACTIVATED, order_ids),
        (data.order_refunded_at, REFUNDED, order_ids),
    ]
    times = np.concatenate([t[t >= 0] for t, _, _ in parts])
    kinds = np.concatenate([np.full((t >= 0).sum(), k, dtype=np.int8) for t, k, _ in parts])
    ids = np.concatenate([i[t >= 0] for t, _, i in parts])
    order = np.lexsort((ids, kinds, times))
    return times[order], kinds[order], ids[order]


def plan_snapshot_json(data: DemoData) -> list[str]:
    return [
        json.dumps({"plan": {"id": i + 1, "name": p.name, "region": p.region, "data_mb": p.data_mb,
                             "validity_days": p.validity_days, "price_minor_units": p.price_minor_units,
                             "currency": p.currency}})
        for i, p in enumerate(data.plans)
    ]


def event_rows(data: DemoData, created_at: str) -> Iterator[list[tuple]]:
    """analytics_events rows in id order, in chunks."""
    times, kinds, ids = actions(data)
    snapshots = plan_snapshot_json(data)
    prices = [p.price_minor_units for p in data.plans]
    currencies = [p.currency for p in data.plans]
    was_retried = retried(data)
    profile_iccid = {}
    for start in range(0, len(times), CHUNK):
        chunk = slice(start, start + CHUNK)
        stamps = timestamps(times[chunk])
        activated_orders = ids[chunk][kinds[chunk] == ACTIVATED] - 1
        profile_iccid = dict(zip(data.order_profile[activated_orders].tolist(), iccids(data.order_profile[activated_orders]), strict=True))
        rows = []
        for offset, (kind, entity) in enumerate(zip(kinds[chunk].tolist(), ids[chunk].tolist(), strict=True)):
            event_id = start + offset + 1
            event_type = EVENT_TYPES[kind]
            if kind == SIGNUP:
                rows.append((event_id, event_type, entity, None, None, None, None, '{"source": "otp_request"}',
                             stamps[offset], created_at, f"user_signup:user:{entity}"))
                continue
            index = entity - 1
            user_id = int(data.order_user[index])
            plan = int(data.order_plan[index])
            if kind == CHECKOUT:
                amount, currency, metadata = prices[plan], currencies[plan], snapshots[plan]
            elif kind == PAYMENT_FAILED:
                amount, currency = prices[plan], currencies[plan]
                attempt, _, _ = webhook_payload(entity, kind, amount, currency)
                metadata = json.dumps({"payment_intent_id": intent_id(entity), "attempt_id": attempt, "provider": "sandbox"})
                rows.append((event_id, event_type, user_id, entity, plan + 1, amount, currency, metadata,
                             stamps[offset], created_at, f"{event_type}:{attempt}"))
                continue
            elif kind == REFUNDED:
                amount, currency = int(data.order_refund_amount[index]), currencies[plan]
                metadata = json.dumps({"refund_id": refund_id(entity), "provider": "sandbox", "source": "admin",
                                       "full": amount == prices[plan], "refunded_minor_units": amount})
                rows.append((event_id, event_type, user_id, entity, plan + 1, amount, currency, metadata,
                             stamps[offset], created_at, f"{event_type}:{refund_id(entity)}"))
                continue
            elif kind == PAID:
                source = "webhook" if was_retried[index] else "payment_intent"
                amount, currency = prices[plan], currencies[plan]
                metadata = json.dumps({"payment_intent_id": intent_id(entity), "provider": "sandbox", "source": source})
            else:
                profile = int(data.order_profile[index])
                amount = currency = None
                metadata = json.dumps({"profile_id": profile, "iccid": profile_iccid[profile],
                                       "provisioning_ref": f"prov-{entity}-{profile}"})
            rows.append((event_id, event_type, user_id, entity, plan + 1, amount, currency, metadata,
                         stamps[offset], created_at, f"{event_type}:order:{entity}"))
        yield rows


def webhook_payload(order_id: int, kind: int, amount: int, currency: str) -> tuple[str, str, dict]:
    """(provider event id, type, payload) of a sandbox payment outcome."""
    event_type = "payment_intent.succeeded" if kind == PAID else "payment_intent.payment_failed"
    event_id = f"evt_demo_{order_id:09d}_{'succeeded' if kind == PAID else 'failed'}"
    payload = {"id": event_id, "type": event_type,
               "data": {"object": {"id": intent_id(order_id), "amount": amount, "currency": currency.lower()}}}
    return event_id, event_type, payload
