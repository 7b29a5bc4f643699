"""Oracle: random histories -> the funnel and retention equal a plain-Python model of the semantics.

The model reads the raw events and walks each entrant's steps with datetime arithmetic; it
shares no code with the engine. Histories are written through record_event in a shuffled
order (late inserts), some of them applied by the catch-up part way (the rest stays queued
and is merged at query time), or inserted straight into analytics_events and then rebuilt.
"""

import datetime as dt
import math
import random
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_case
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from zoneinfo import ZoneInfo

from app.models.analytics import AnalyticsEvent, EventType
from app.models.order import Order
from app.models.user import User
from app.services.analytics import record_event
from app.services.funnel_query import FunnelQuery, SqlFunnelEngine
from app.services.funnel_rebuild import rebuild_funnel
from app.services.funnel_store import catch_up
from app.services.retention import retention
from tests.factories import create_plan

BASE = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)  # US and EU DST changes fall inside the span
ZONES = ["UTC", "America/Los_Angeles", "Asia/Tokyo", "Europe/Berlin"]
STEP_TYPES = {
    ("user", False): ["checkout_started", "payment_succeeded", "esim_activated"],
    ("user", True): ["verified", "checkout_started", "payment_succeeded", "esim_activated"],
    ("order", False): ["payment_succeeded", "esim_activated"],
}

# Seconds from BASE: exact day multiples and near-duplicates make window edges and ties common.
offsets = st.one_of(
    st.sampled_from([0, 1, 86_400, 86_401, 2 * 86_400, 7 * 86_400, 7 * 86_400 + 1, 14 * 86_400]),
    st.integers(0, 40 * 86_400),
)
orders = st.lists(
    st.tuples(st.one_of(st.none(), offsets), st.one_of(st.none(), offsets), st.one_of(st.none(), offsets), st.integers(0, 2)),
    max_size=3,
)
users = st.lists(
    st.tuples(st.one_of(st.none(), offsets), st.one_of(st.none(), offsets), st.booleans(), orders), min_size=1, max_size=6
)
queries = st.fixed_dictionaries(
    {
        "start": st.integers(-2, 30),
        "length": st.integers(1, 45),
        "window": st.sampled_from([1, 2, 5, 7, 14, 45, 90]),
        "tz": st.sampled_from(ZONES),
        "by": st.sampled_from(["user", "order"]),
        "verified": st.booleans(),
        "breakdown": st.sampled_from([None, "plan", "currency", "region", "signup_week", "signup_month"]),
        "exclude": st.booleans(),
        "now": st.integers(0, 60 * 86_400),
        "interval": st.sampled_from(["week", "month"]),
    }
)


def _write(session: Session, history, direct: bool, shuffle_seed: int, catch_up_at: tuple[int, int] = (-1, 0)):
    plans = [create_plan(session, name=f"Oracle {i}", region=["Asia", "Europe", "Asia"][i], currency=["JPY", "EUR", "USD"][i]) for i in range(3)]
    events = []
    for index, (signup, verified, internal, user_orders) in enumerate(history):
        user = User(email=f"oracle{index}@{'team' if internal else 'shop'}.test",
                    verified_at=BASE + dt.timedelta(seconds=verified) if verified is not None else None)
        session.add(user)
        session.flush()
        if signup is not None:
            events.append(dict(event_type="user_signup", user_id=user.id, at=signup))
        for checkout, paid, activated, plan_index in user_orders:
            plan = plans[plan_index]
            order = Order(user_id=user.id, plan_id=plan.id, amount_minor_units=100, currency=plan.currency)
            session.add(order)
            session.flush()
            for event_type, moment in (("checkout_started", checkout), ("payment_succeeded", paid), ("esim_activated", activated)):
                if moment is not None:
                    events.append(dict(event_type=event_type, user_id=user.id, order_id=order.id, plan_id=plan.id, currency=plan.currency, at=moment))
    random.Random(shuffle_seed).shuffle(events)
    for index, e in enumerate(events):
        if index == catch_up_at[0]:
            catch_up(session, limit=catch_up_at[1])  # the oldest queued rows applied, the newer ones still queued
        moment = BASE + dt.timedelta(seconds=e.pop("at"))
        if direct:
            key = f"{e['event_type']}:{'user:' + str(e['user_id']) if e['event_type'] == 'user_signup' else 'order:' + str(e['order_id'])}"
            session.execute(insert(AnalyticsEvent).values(**e, occurred_at=moment, dedupe_key=key, event_metadata={}))
        else:
            record_event(session, EventType(e.pop("event_type")), occurred_at=moment, **e)
    if direct:
        rebuild_funnel(session)
    return plans


# The model ------------------------------------------------------------------------------


def _raw(session):
    e = AnalyticsEvent
    rows = session.execute(select(e.event_type, e.user_id, e.order_id, e.plan_id, e.currency, e.occurred_at)).all()
    verified = dict(session.execute(select(User.id, User.verified_at)).all())
    return rows, verified


def model_funnel(session, q, names, plans, internal):
    rows, verified = _raw(session)
    zone = ZoneInfo(q["tz"])
    start = BASE.date() + dt.timedelta(days=q["start"])
    end = start + dt.timedelta(days=q["length"] - 1)
    window = dt.timedelta(days=q["window"])
    now = BASE + dt.timedelta(seconds=q["now"])
    plan_of = {p.id: p for p in plans}
    entrants = []  # (entry, reached times list, value)
    if q["by"] == "user":
        by_user = defaultdict(list)
        for r in rows:
            by_user[r.user_id].append(r)
        for user_id, evs in by_user.items():
            signups = [r.occurred_at for r in evs if r.event_type == "user_signup"]
            if not signups or (q["exclude"] and user_id in internal):
                continue
            entry = min(signups)
            if not start <= entry.astimezone(zone).date() <= end:
                continue
            times = [entry]
            for step in STEP_TYPES[("user", q["verified"])]:
                if step == "verified":
                    cands = [verified[user_id]] if verified.get(user_id) else []
                else:
                    cands = [r.occurred_at for r in evs if r.event_type == step]
                later = [c for c in cands if c >= times[-1]]
                if not later or min(later) - entry > window:
                    break
                times.append(min(later))
            checkouts = sorted((r.occurred_at, r.order_id, r) for r in evs if r.event_type == "checkout_started" and r.occurred_at >= entry)
            first = checkouts[0][2] if checkouts and checkouts[0][0] - entry <= window else None
            entrants.append((entry, times, first))
    else:
        by_order = defaultdict(list)
        for r in rows:
            if r.order_id:
                by_order[r.order_id].append(r)
        for evs in by_order.values():
            checkout = [r for r in evs if r.event_type == "checkout_started"]
            if not checkout or (q["exclude"] and checkout[0].user_id in internal):
                continue
            entry = checkout[0].occurred_at
            if not start <= entry.astimezone(zone).date() <= end:
                continue
            times = [entry]
            for step in STEP_TYPES[("order", False)]:
                later = [r.occurred_at for r in evs if r.event_type == step and r.occurred_at >= times[-1]]
                if not later or min(later) - entry > window:
                    break
                times.append(min(later))
            entrants.append((entry, times, checkout[0]))

    def value(entry, first):
        kind = q["breakdown"]
        local = entry.astimezone(zone).date()
        if kind == "signup_week":
            return (local - dt.timedelta(days=local.weekday())).isoformat()
        if kind == "signup_month":
            return local.strftime("%Y-%m")
        if first is None:
            return "(none)"
        return {"plan": plan_of[first.plan_id].name, "region": plan_of[first.plan_id].region, "currency": first.currency}[kind]

    def summary(group):
        out = []
        for k in range(len(names)):
            reached = [e for e in group if len(e[1]) > k]
            previous = [e for e in group if len(e[1]) > k - 1] if k else reached
            short = [e for e in previous if len(e[1]) == k]
            gaps = sorted(e[1][k] - e[1][k - 1] for e in reached) if k else []

            def rank(p):
                if not gaps:
                    return None
                return gaps[max(1, math.ceil(p * len(gaps) / 100)) - 1].total_seconds()

            in_progress = sum(1 for e in short if now - e[0] <= window) if k else 0
            out.append((len(reached), in_progress, len(short) - in_progress if k else 0, rank(50) if k else None, rank(90) if k else None))
        return out

    overall = summary(entrants)
    series = None
    if q["breakdown"]:
        groups = defaultdict(list)
        for entry, times, first in entrants:
            groups[value(entry, first)].append((entry, times, first))
        if q["breakdown"] in ("signup_week", "signup_month"):
            series = [(v, len(groups[v]), summary(groups[v])) for v in sorted(groups)]
        else:
            ranked = sorted(groups, key=lambda v: (-len(groups[v]), v))
            series = [(v, len(groups[v]), summary(groups[v])) for v in ranked[:10]]
            rest = [e for v in ranked[10:] for e in groups[v]]
            if rest:
                series.append(("Other", len(rest), summary(rest)))
    return overall, series


def model_retention(session, q, internal):
    rows, _ = _raw(session)
    zone = ZoneInfo(q["tz"])
    start = BASE.date() + dt.timedelta(days=q["start"])
    end = start + dt.timedelta(days=q["length"] - 1)

    def period(day):
        return day - dt.timedelta(days=day.weekday()) if q["interval"] == "week" else day.replace(day=1)

    def index(day):
        return (day - dt.date(2000, 1, 3)).days // 7 if q["interval"] == "week" else day.year * 12 + day.month

    paid = defaultdict(set)
    for r in rows:
        if r.event_type == "payment_succeeded" and not (q["exclude"] and r.user_id in internal):
            paid[r.user_id].add(index(period(r.occurred_at.astimezone(zone).date())))
    first, last = index(period(start)), index(period(end))
    out = []
    for cohort in range(first, last + 1):
        members = [periods for periods in paid.values() if min(periods) == cohort]
        out.append((len(members), [sum(1 for p in members if cohort + i in p) for i in range(1, last - cohort + 1)]))
    return out


def _shape(result):
    return [(s.count, s.in_progress, s.dropped, s.median_seconds, s.p90_seconds) for s in result]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    history=users, q=queries, direct=st.booleans(), shuffle_seed=st.integers(0, 1000),
    catch_up_at=st.tuples(st.integers(-1, 20), st.integers(1, 30)),
)
def test_funnel_and_retention_equal_the_model(engine, history, q, direct, shuffle_seed, catch_up_at):
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
            plans = _write(session, history, direct, shuffle_seed, catch_up_at)
            internal = frozenset(session.scalars(select(User.id).where(User.email.like("%@team.test"))))
            start = BASE.date() + dt.timedelta(days=q["start"])
            query = FunnelQuery(
                start=start, end=start + dt.timedelta(days=q["length"] - 1), by=q["by"], window_days=q["window"], tz=q["tz"],
                breakdown=q["breakdown"], exclude_internal=q["exclude"], with_verified=q["verified"],
                internal_user_ids=internal if q["exclude"] else frozenset(), now=BASE + dt.timedelta(seconds=q["now"]),
            )
            fast = SqlFunnelEngine().funnel(session, query)
            exact = SqlFunnelEngine(use_rollups=False).funnel(session, query)
            overall, series = model_funnel(session, q, fast.steps, plans, internal)
            note_case(f"reached the last step: {overall[-1][0] > 0}; some in progress: {any(s[1] for s in overall)}")
            assert _shape(fast.funnel) == overall
            assert SqlFunnelEngine().step_counts(session, query) == [step[0] for step in overall]
            assert _shape(exact.funnel) == overall
            if series is not None:
                assert [(s.value, s.entrants, _shape(s.steps)) for s in fast.breakdowns] == series
            report = retention(
                session, interval=q["interval"], start=query.start, end=query.end, tz=q["tz"],
                internal_user_ids=internal if q["exclude"] else frozenset(),
            )
            assert [(c.size, c.retained) for c in report.cohorts] == model_retention(session, q, internal)
            # The rollup path in UTC equals the model in UTC too.
            utc = SqlFunnelEngine().funnel(session, FunnelQuery(**{**query.__dict__, "tz": "UTC", "breakdown": None}))
            assert _shape(utc.funnel) == model_funnel(session, {**q, "tz": "UTC", "breakdown": None}, fast.steps, plans, internal)[0]
        finally:
            session.close()
            transaction.rollback()
