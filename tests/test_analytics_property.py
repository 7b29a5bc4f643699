"""Property test: every analytics endpoint equals a plain-Python count over the same events."""

import datetime as dt
import secrets
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_case
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from app.api.admin import parse_day
from app.api.deps import get_db, unit_of_work
from app.errors import InvalidInput
from app.main import app
from app.models.analytics import FUNNEL, EventType
from app.models.user import AuthSession
from app.services.analytics import record_event
from app.services.auth import token_hash
from tests.factories import create_order, create_plan, create_user
from tests.helpers import contract_part

TYPES = [e.value for e in FUNNEL]
CURRENCIES = ["USD", "EUR", "GBP"]
FIRST_DAY = dt.date(2025, 1, 1)  # events fall on 90 days from here, across three month ends
USERS, PLANS = 6, 5  # up to 15 (plan, currency) rows: more than the top 10


@dataclass(frozen=True)
class Event:
    type: str
    user: int
    plan: int
    currency: str
    amount: int
    at: dt.datetime

    @property
    def day(self) -> dt.date:
        return self.at.date()


def one_signup_per_user(events: list[Event]) -> list[Event]:
    """A user signs up once: later signups of the same user are dropped."""
    signed_up: set[int] = set()
    kept = []
    for event in events:
        if event.type == "user_signup":
            if event.user in signed_up:
                continue
            signed_up.add(event.user)
        kept.append(event)
    return kept


moments = st.builds(
    lambda day, second, micro: dt.datetime.combine(FIRST_DAY, dt.time(), tzinfo=dt.UTC)
    + dt.timedelta(days=day, seconds=second, microseconds=micro),
    st.integers(0, 89),
    st.one_of(st.just(0), st.just(86399), st.integers(0, 86399)),
    st.one_of(st.just(0), st.just(999999), st.integers(0, 999999)),
)
events_strategy = st.lists(
    st.builds(
        Event,
        type=st.sampled_from([*TYPES, "payment_succeeded"]),  # payments twice as often
        user=st.integers(0, USERS - 1),
        plan=st.integers(0, PLANS - 1),
        currency=st.sampled_from([*CURRENCIES, "USD"]),
        amount=st.one_of(st.integers(0, 3), st.integers(0, 100_000)),  # tiny sums make .5 means common
        at=moments,
    ),
    min_size=15,
    max_size=60,
).map(one_signup_per_user)
day_offsets = st.integers(-15, 85)
lengths = st.one_of(st.integers(1, 100), st.integers(360, 400))
type_filters = st.one_of(st.none(), st.lists(st.tuples(st.sampled_from(TYPES), st.booleans()), min_size=1, max_size=4))


def seed(session: Session, events: list[Event]) -> tuple[dict, list]:
    """Rows for the events (one order per order event), then the events through record_event."""
    users = [create_user(session, signup=False) for _ in range(USERS)]
    plans = [create_plan(session, name=f"Property plan {i}") for i in range(PLANS)]
    for event in events:
        user = users[event.user]
        if event.type == "user_signup":
            record_event(session, EventType.USER_SIGNUP, user_id=user.id, occurred_at=event.at)
            continue
        order = create_order(session, user=user, plan=plans[event.plan])
        has_amount = event.type != "esim_activated"
        record_event(
            session,
            EventType(event.type),
            user_id=user.id,
            order_id=order.id,
            plan_id=plans[event.plan].id,
            amount_minor_units=event.amount if has_amount else None,
            currency=event.currency if has_amount else None,
            occurred_at=event.at,
        )
    admin = create_user(session, is_admin=True, signup=False)
    token = secrets.token_urlsafe(32)
    session.add(AuthSession(user_id=admin.id, token_hash=token_hash(token), expires_at=dt.datetime(2999, 1, 1, tzinfo=dt.UTC)))
    session.flush()
    return {"Authorization": f"Bearer {token}"}, plans


def expected_range(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date, bool]:
    if (end - start).days + 1 > 365:
        return end - dt.timedelta(days=364), end, True
    return start, end, False


def totals(events: list[Event], start: dt.date, end: dt.date, shown: list[str]):
    inside = [e for e in events if start <= e.day <= end]
    counts = {t: sum(e.type == t for e in inside) for t in shown}
    unique = {t: len({e.user for e in inside if e.type == t}) for t in shown}
    revenue = defaultdict(int)
    for e in inside:
        if e.type == "payment_succeeded":
            revenue[e.currency] += e.amount
    return inside, counts, unique, dict(sorted(revenue.items()))


def expected_overview(events, start, end, clamped, shown, plans) -> dict:
    inside, _, unique, revenue = totals(events, start, end, shown)
    all_counts = totals(events, start, end, TYPES)[1]
    days = (end - start).days + 1
    previous_end = start - dt.timedelta(days=1)
    previous_start = previous_end - dt.timedelta(days=days - 1)
    _, previous_counts, _, previous_revenue = totals(events, previous_start, previous_end, shown)
    by_plan = defaultdict(lambda: [0, 0])
    for e in inside:
        if e.type == "payment_succeeded":
            by_plan[(plans[e.plan].id, e.currency)][0] += e.amount
            by_plan[(plans[e.plan].id, e.currency)][1] += 1
    ranked = sorted(by_plan.items(), key=lambda item: (-item[1][0], -item[1][1], item[0][0], item[0][1]))[:10]
    names = {p.id: p.name for p in plans}
    ratio = lambda a, b: all_counts[b] / all_counts[a] if all_counts[a] else None  # noqa: E731
    return {
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "clamped": clamped,
        "counts": {t: all_counts[t] for t in shown},
        "unique_users": unique,
        "conversion": ordered_conversion(events, start, end),
        "event_count_ratios": {
            "signup_to_checkout": ratio("user_signup", "checkout_started"),
            "checkout_to_payment": ratio("checkout_started", "payment_succeeded"),
            "payment_to_activation": ratio("payment_succeeded", "esim_activated"),
            "signup_to_activation": ratio("user_signup", "esim_activated"),
        },
        "conversion_basis": "ordered_funnel_by_user_window_14d",
        "revenue": revenue,
        "previous": {
            "start_date": previous_start.isoformat(),
            "end_date": previous_end.isoformat(),
            "counts": previous_counts,
            "revenue": previous_revenue,
            "compares": "whole_days",
            "cut_at": None,
        },
        "top_plans": [
            {"plan_id": plan_id, "plan_name": names[plan_id], "currency": currency, "revenue_minor_units": revenue, "payments": payments}
            for (plan_id, currency), (revenue, payments) in ranked
        ],
        **finance_additions(inside, revenue),
    }


def ordered_conversion(events, start: dt.date, end: dt.date) -> dict:
    """People who signed up on start..end; each later step is the user's earliest event of its
    type at or after the previous step, within 14 days of the signup."""
    reached = [0, 0, 0, 0]
    for signup in (e for e in events if e.type == "user_signup" and start <= e.day <= end):
        moment, steps = signup.at, 1
        for step_type in ("checkout_started", "payment_succeeded", "esim_activated"):
            later = [e.at for e in events if e.user == signup.user and e.type == step_type and e.at >= moment]
            if not later or min(later) - signup.at > dt.timedelta(days=14):
                break
            moment, steps = min(later), steps + 1
        for k in range(steps):
            reached[k] += 1
    share = lambda k, of: reached[k] / reached[of] if reached[of] else None  # noqa: E731
    return {"signup_to_checkout": share(1, 0), "checkout_to_payment": share(2, 1), "payment_to_activation": share(3, 2),
            "signup_to_activation": share(3, 0)}


def finance_additions(inside, revenue) -> dict:
    """No refunds or failed payments are generated here: net = gross; AOV is revenue / payments, half up."""
    payments = defaultdict(int)
    for e in inside:
        if e.type == "payment_succeeded":
            payments[e.currency] += 1
    succeeded = sum(payments.values())
    return {
        "refunds": dict.fromkeys(revenue, 0),
        "net_revenue": dict(revenue),
        "payments_by_currency": {c: payments[c] for c in revenue},
        "average_order_value": {c: int((Decimal(revenue[c]) / payments[c]).quantize(Decimal(1), ROUND_HALF_UP)) for c in revenue},
        "payments_failed": 0,
        "payment_failure_rate": 0.0 if succeeded else None,
        "converted": None,
    }


def expected_buckets(events, start, end, shown) -> list[dict]:
    buckets = []
    for offset in range((end - start).days + 1):
        day = start + dt.timedelta(days=offset)
        _, counts, _, revenue = totals(events, day, day, shown)
        paid = sum(1 for e in events if e.type == "payment_succeeded" and e.at.date() == day)
        buckets.append({"date": day.isoformat(), "counts": counts, "revenue": revenue, "refunds": {}, "net_revenue": revenue,
                        "payments_failed": 0, "payment_failure_rate": 0.0 if paid else None})
    return buckets


def expected_projection(events, as_of, window, horizon, currency) -> dict:
    history_days = [as_of - dt.timedelta(days=window - i) for i in range(window)]
    earlier_days = [day - dt.timedelta(days=window) for day in history_days]

    def revenue(day):
        return sum(e.amount for e in events if e.day == day and e.type == "payment_succeeded" and e.currency == currency)

    def signups(day):
        return sum(e.type == "user_signup" and e.day == day for e in events)

    body = {
        "method": "moving_average", "window_days": window, "horizon_days": horizon, "currency": currency,
        "as_of": as_of.isoformat(),
        "history": [{"date": d.isoformat(), "revenue_minor_units": revenue(d), "signups": signups(d)} for d in history_days],
        "forecast": [], "projected_revenue_minor_units": 0, "projected_signups": 0, "growth_rate": None, "note": None,
    }
    first_day = min((e.day for e in events), default=None)
    if first_day is None or first_day > history_days[0]:
        body["note"] = "Not enough data"
        return body
    history_revenue = sum(h["revenue_minor_units"] for h in body["history"])
    mean_revenue = (2 * history_revenue + window) // (2 * window)  # half up, in integers
    mean_signups = sum(h["signups"] for h in body["history"]) / window
    body["forecast"] = [
        {"date": (as_of + dt.timedelta(days=i)).isoformat(), "revenue_minor_units": mean_revenue, "signups": mean_signups}
        for i in range(horizon)
    ]
    body["projected_revenue_minor_units"] = mean_revenue * horizon
    body["projected_signups"] = sum([mean_signups] * horizon)
    # The earlier days on or after the first event; the growth compares mean revenue per day.
    earlier_days = [d for d in earlier_days if d >= first_day]
    earlier_revenue = sum(revenue(d) for d in earlier_days)
    if earlier_revenue:
        body["growth_rate"] = history_revenue * len(earlier_days) / (earlier_revenue * window) - 1
    return body


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    events=events_strategy,
    start_offset=day_offsets,
    length=lengths,
    type_filter=type_filters,
    as_of_offset=st.integers(0, 100),
    window=st.integers(3, 20),
    horizon=st.integers(1, 10),
    currency=st.sampled_from(CURRENCIES),
)
def test_endpoints_match_a_plain_computation(engine, events, start_offset, length, type_filter, as_of_offset, window, horizon, currency):
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
            headers, plans = seed(session, events)

            def request_db():
                yield from unit_of_work(Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False))

            app.dependency_overrides[get_db] = request_db
            check(TestClient(app), headers, plans, events, start_offset, length, type_filter, as_of_offset, window, horizon, currency)
        finally:
            app.dependency_overrides.pop(get_db, None)
            session.close()
            transaction.rollback()


UTC_EVERYONE = {"tz": "UTC", "exclude_internal": False, "incomplete_day": None}  # the default scope; every range is past


def check(client, headers, plans, events, start_offset, length, type_filter, as_of_offset, window, horizon, currency):
    asked_start = FIRST_DAY + dt.timedelta(days=start_offset)
    asked_end = asked_start + dt.timedelta(days=length - 1)
    start, end, clamped = expected_range(asked_start, asked_end)
    params = [("start_date", asked_start.isoformat()), ("end_date", asked_end.isoformat())]
    params += [("event_types[]" if brackets else "event_types", t) for t, brackets in type_filter or []]
    shown = [t for t in TYPES if t in {t for t, _ in type_filter or []}] or TYPES

    overview = client.get("/admin/analytics/overview", params=params, headers=headers)
    assert overview.status_code == 200, overview.text
    assert overview.json() == {"engine": "sql", "fresh_as_of": None, **UTC_EVERYONE, **expected_overview(events, start, end, clamped, shown, plans)}

    series = client.get("/admin/analytics/timeseries", params=params, headers=headers).json()
    buckets = expected_buckets(events, start, end, shown)
    assert series == {"engine": "sql", "fresh_as_of": None, **UTC_EVERYONE, "start_date": start.isoformat(), "end_date": end.isoformat(), "clamped": clamped, "interval": "day", "event_types": shown, "buckets": buckets}
    assert {t: sum(b["counts"][t] for b in series["buckets"]) for t in shown} == overview.json()["counts"]

    as_of = FIRST_DAY + dt.timedelta(days=as_of_offset)
    query = {"as_of": as_of.isoformat(), "window_days": window, "horizon_days": horizon, "currency": currency}
    projection = client.get("/admin/analytics/projections", params=query, headers=headers)
    assert projection.status_code == 200, projection.text
    expected = expected_projection(events, as_of, window, horizon, currency)
    assert contract_part(projection.json()) == {"engine": "sql", "fresh_as_of": None, **expected}
    # Shown by --hypothesis-show-statistics: how often each branch was exercised.
    note_case(f"clamped={clamped}")
    note_case(f"top plans: {len(overview.json()['top_plans'])}")
    note_case(f"projection note={expected['note']}; growth={'null' if expected['growth_rate'] is None else 'value'}")
    history_revenue = sum(h["revenue_minor_units"] for h in expected["history"])
    note_case(f"mean revenue ends in .5: {expected['note'] is None and (2 * history_revenue) % (2 * window) == window}")


offsets = st.builds(dt.timezone, st.timedeltas(min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59)))


@settings(max_examples=300, deadline=None)
@given(moment=st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)), tz=st.one_of(st.none(), offsets))
def test_a_datetime_parameter_means_its_utc_day(moment, tz):
    text = moment.replace(tzinfo=tz).isoformat()
    utc_day = moment.date() if tz is None else _utc_day_or_none(moment.replace(tzinfo=tz))
    if utc_day is not None and dt.date(1970, 1, 1) <= utc_day <= dt.date(2999, 12, 31):
        assert parse_day(text, "start_date") == utc_day
    else:
        with pytest.raises(InvalidInput):
            parse_day(text, "start_date")


def _utc_day_or_none(moment: dt.datetime) -> dt.date | None:
    try:
        return moment.astimezone(dt.UTC).date()
    except OverflowError:
        return None


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40))
def test_any_text_is_a_day_or_a_clear_422(text):
    try:
        day = parse_day(text, "end_date")
    except InvalidInput as error:
        assert error.status_code == 422 and "end_date" in error.detail
    else:
        assert day is None or dt.date(1970, 1, 1) <= day <= dt.date(2999, 12, 31)
