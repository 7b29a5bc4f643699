"""rebuild_rollups equals a plain-Python GROUP BY, and record_event's upkeep equals rebuild_rollups."""

import datetime as dt
import random

import pytest
from collections import defaultdict

from sqlalchemy import insert

from app.models.analytics import AnalyticsEvent, EventType
from app.services.analytics import record_event
from app.services.rollup_repo import rebuild as rebuild_rollups
from tests.helpers import rollup_rows
from tests.factories import create_order, create_plan, create_user

TYPES = [e.value for e in EventType]


def expected_rollups(events) -> dict[str, list[tuple]]:
    """The three rollup tables worked out in Python from (type, plan_id, amount, currency, time)."""
    totals, monthly_totals = defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0])
    daily, monthly = defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0])
    for event_type, plan_id, amount, currency, at in events:
        day, cur = at.astimezone(dt.UTC).date(), (currency or "").upper()
        # payment_refunded amounts are kept in the same column (refunds per day and currency).
        revenue = (amount or 0) if event_type in ("payment_succeeded", "payment_refunded") else 0
        for table, key in ((totals, (day, event_type, cur)), (monthly_totals, (day.replace(day=1), event_type, cur))):
            table[key][0] += 1
            table[key][1] += revenue
        if event_type == "payment_succeeded" and plan_id is not None:
            for table, key in ((daily, (day, plan_id, cur)), (monthly, (day.replace(day=1), plan_id, cur))):
                table[key][0] += 1
                table[key][1] += revenue
    rows = lambda table: [(*k, *v) for k, v in sorted(table.items())]  # noqa: E731
    return {"analytics_daily_totals": rows(totals), "analytics_monthly_totals": rows(monthly_totals),
            "analytics_daily_plans": rows(daily), "analytics_monthly_plans": rows(monthly),
            "analytics_local_daily_totals": []}  # the rollups' zone is UTC here: its days are the daily totals


def test_rebuild_equals_python_group_by_on_random_events(db):
    rng = random.Random(21)
    user = create_user(db, signup=False)
    plans = [create_plan(db, currency=c) for c in ("USD", "EUR", "GBP")]
    events = []
    rows = []
    for n in range(3000):
        event_type = rng.choice(TYPES)
        plan = rng.choice([*plans, None])
        amount = rng.choice([None, 0, rng.randrange(1, 100_000)])
        currency = rng.choice([None, "USD", "EUR", "gbp"])
        at = dt.datetime(2024, 12, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=rng.randrange(120 * 86_400))
        events.append((event_type, plan.id if plan else None, amount, currency, at))
        rows.append({"event_type": event_type, "user_id": user.id, "plan_id": plan.id if plan else None,
                     "amount_minor_units": amount, "currency": currency.upper() if currency else None,
                     "occurred_at": at, "event_metadata": {}, "dedupe_key": f"r{n}"})
    db.execute(insert(AnalyticsEvent), rows)
    counts = rebuild_rollups(db)
    expected = expected_rollups(events)
    assert rollup_rows(db) == expected
    assert counts == {table: len(r) for table, r in expected.items()}


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_record_event_upkeep_equals_rebuild(db, settings, monkeypatch, zone):
    """record_event's increments equal the rebuild's GROUP BY, the local days of a non-UTC rollups' zone too."""
    from sqlalchemy import delete, insert

    from app.models.funnel import RollupMeta
    from app.services.funnel_store import ZONE_META

    monkeypatch.setattr(settings, "analytics_timezone", zone)
    db.execute(delete(RollupMeta).where(RollupMeta.name == ZONE_META))  # a rebuild or an emptied database may have left none
    db.execute(insert(RollupMeta).values(name=ZONE_META, value=zone))
    db.info.pop(ZONE_META, None)
    rng = random.Random(5)
    plans = [create_plan(db, currency=c, price_minor_units=p) for c, p in (("USD", 999), ("EUR", 1450))]
    for _ in range(60):
        at = dt.datetime(2025, 1, 28, tzinfo=dt.UTC) + dt.timedelta(hours=rng.randrange(24 * 10))
        user = create_user(db, now=at)
        plan = rng.choice(plans)
        order = create_order(db, user=user, plan=plan)
        record_event(db, EventType.CHECKOUT_STARTED, user_id=user.id, order_id=order.id, plan_id=plan.id,
                     amount_minor_units=plan.price_minor_units, currency=plan.currency.lower(), occurred_at=at)
        if rng.random() < 0.7:
            record_event(db, EventType.PAYMENT_SUCCEEDED, user_id=user.id, order_id=order.id, plan_id=plan.id,
                         amount_minor_units=plan.price_minor_units, currency=plan.currency, occurred_at=at + dt.timedelta(hours=3))
            if rng.random() < 0.3:
                record_event(db, EventType.PAYMENT_REFUNDED, user_id=user.id, order_id=order.id, plan_id=plan.id,
                             amount_minor_units=plan.price_minor_units // 2, currency=plan.currency,
                             occurred_at=at + dt.timedelta(days=1), fact_id=f"re_{order.id}")
        else:
            record_event(db, EventType.PAYMENT_FAILED, user_id=user.id, order_id=order.id, plan_id=plan.id,
                         amount_minor_units=plan.price_minor_units, currency=plan.currency,
                         occurred_at=at + dt.timedelta(hours=1), fact_id=f"ch_{order.id}")
    db.flush()
    maintained = rollup_rows(db)
    assert bool(maintained["analytics_local_daily_totals"]) == (zone != "UTC")
    rebuild_rollups(db)
    assert rollup_rows(db) == maintained
    assert sum(r[3] for r in maintained["analytics_daily_plans"]) == sum(r[3] for r in maintained["analytics_monthly_plans"])
