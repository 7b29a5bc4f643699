"""The ordered funnel's step times of one entrant, independent of any window (pure functions).

Step k is reached at the earliest event of its type at or after the time step k-1 was
reached; with a window of W days it counts iff (t_k - t_1) <= W days. So the times are
computed once, and `delay_days` = ceil((t_k - t_1) / 1 day) decides every window:
reached within W  <=>  delay_days <= W.
"""

import datetime as dt
from bisect import bisect_right
from dataclasses import dataclass

from app.models.analytics import EventType

DAY_US = 86_400 * 1_000_000
MAX_WINDOW_DAYS = 90
BEYOND = MAX_WINDOW_DAYS + 1  # delay_days of a step reached later than any window
NO_ATTRIBUTION = 127
# Gap buckets: [0, 1 s), then eight per doubling from 1 s to past 90 days (193 buckets), so
# the bucket holding a percentile's rank is a small share of the entrants (its rows are read).
SUB_BUCKETS = 8
GAP_BOUNDS_US = [0] + [round(1_000_000 * 2 ** (k / SUB_BUCKETS)) for k in range(24 * SUB_BUCKETS)]
LAST_BUCKET = len(GAP_BOUNDS_US) - 1
# Fine buckets: each bucket from 1 s on split in eight again (64 per doubling), so a percentile's
# exact read sorts an eighth of its bucket; fine bucket 0 is bucket 0. Bounds shared with the buckets:
# bucket b >= 1 is fine buckets 8(b-1)+1 .. 8b (the last of both open-ended).
FINE_PER_BUCKET = 8
FINE_BOUNDS_US = [0] + [round(1_000_000 * 2 ** (k / (SUB_BUCKETS * FINE_PER_BUCKET))) for k in range(24 * SUB_BUCKETS * FINE_PER_BUCKET)]
LAST_FINE = len(FINE_BOUNDS_US) - 1

USER_STEPS = ("user_signup", "checkout_started", "payment_succeeded", "esim_activated")
USER_VERIFIED_STEPS = ("user_signup", "verified", "checkout_started", "payment_succeeded", "esim_activated")
ORDER_STEPS = ("checkout_started", "payment_succeeded", "esim_activated")


def step_names(kind: str, chain: str) -> tuple[str, ...]:
    if kind == "order":
        return ORDER_STEPS
    return USER_VERIFIED_STEPS if chain == "verified" else USER_STEPS


def micros(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def delay_days(entry: dt.datetime, reached: dt.datetime) -> int:
    """ceil of the days between entry and reached, BEYOND past the longest window."""
    days = -(-micros(reached - entry) // DAY_US)
    return min(days, BEYOND)


def gap_bucket(gap_us: int) -> int:
    return min(bisect_right(GAP_BOUNDS_US, gap_us) - 1, LAST_BUCKET)


def fine_bucket(gap_us: int) -> int:
    return min(bisect_right(FINE_BOUNDS_US, gap_us) - 1, LAST_FINE)


def fine_buckets_of(bucket: int) -> range:
    """The fine buckets that make up `bucket`."""
    if bucket == 0:
        return range(0, 1)
    return range(FINE_PER_BUCKET * (bucket - 1) + 1, min(FINE_PER_BUCKET * bucket, LAST_FINE) + 1)


def fine_gap_bounds(fine: int) -> tuple[int, int | None]:
    """[low, high) of the gaps in fine bucket `fine` (high None: open-ended)."""
    return FINE_BOUNDS_US[fine], FINE_BOUNDS_US[fine + 1] if fine < LAST_FINE else None


@dataclass(frozen=True)
class Event:
    """The fields of an analytics event the funnel reads."""

    event_type: str
    occurred_at: dt.datetime
    order_id: int | None = None
    plan_id: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class StepRow:
    kind: str
    entrant_id: int
    chain: str
    step: int
    user_id: int | None
    entry_at: dt.datetime
    reached_at: dt.datetime
    gap_us: int
    delay_days: int
    bucket: int
    plan_id: int
    region: str
    currency: str
    attr_delay: int

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _chain(entry: dt.datetime, later: list[list[tuple]]) -> list[tuple]:
    """Per later step: the earliest (time, tiebreak, payload) at or after the previous step's time."""
    reached = [(entry, 0, None)]
    for candidates in later:
        after = [c for c in candidates if c[0] >= reached[-1][0]]
        if not after:
            break
        reached.append(min(after, key=lambda c: (c[0], c[1])))
    return reached


def _rows(kind, entrant_id, chain, user_id, reached, dims, attr_delay) -> list[StepRow]:
    entry = reached[0][0]
    rows = []
    plan_id, region, currency = dims
    for index, (at, _, _) in enumerate(reached):
        gap = micros(at - reached[index - 1][0]) if index else 0
        delay = delay_days(entry, at)
        rows.append(
            StepRow(
                kind=kind, entrant_id=entrant_id, chain=chain, step=index + 1, user_id=user_id,
                entry_at=entry, reached_at=at, gap_us=gap, delay_days=delay, bucket=gap_bucket(gap) if index else 0,
                plan_id=plan_id, region=region, currency=currency,
                attr_delay=NO_ATTRIBUTION if attr_delay == NO_ATTRIBUTION else max(delay, attr_delay),
            )
        )
    return rows


def user_rows(user_id: int, events: list[Event], verified_at: dt.datetime | None, regions: dict[int, str]) -> list[StepRow]:
    """Both chains of a user entrant (none without a user_signup event)."""
    signups = sorted(e.occurred_at for e in events if e.event_type == EventType.USER_SIGNUP)
    if not signups:
        return []
    entry = signups[0]
    by_type: dict[str, list[tuple]] = {t: [] for t in USER_STEPS[1:]}
    for e in events:
        if e.event_type in by_type:
            by_type[e.event_type].append((e.occurred_at, e.order_id or 0, e))
    base_later = [by_type[t] for t in USER_STEPS[1:]]
    base = _chain(entry, base_later)
    # Attribution: the first checkout at or after signup (step 2 of the base chain).
    if len(base) > 1:
        checkout: Event = base[1][2]
        plan_id = checkout.plan_id or 0
        dims = (plan_id, regions.get(plan_id, "") if plan_id else "", checkout.currency or "")
        attr = delay_days(entry, base[1][0])
    else:
        dims, attr = (0, "", ""), NO_ATTRIBUTION
    rows = _rows("user", user_id, "base", user_id, base, dims, attr)
    verified = [[(verified_at, 0, None)]] if verified_at is not None else [[]]
    rows += _rows("user", user_id, "verified", user_id, _chain(entry, verified + base_later), dims, attr)
    return rows


def order_rows(order_id: int, user_id: int | None, events: list[Event], regions: dict[int, str]) -> list[StepRow]:
    """The chain of an order entrant: its checkout, then its payment and activation."""
    checkouts = sorted((e for e in events if e.event_type == EventType.CHECKOUT_STARTED), key=lambda e: e.occurred_at)
    if not checkouts:
        return []
    checkout = checkouts[0]
    later = [
        [(e.occurred_at, 0, e) for e in events if e.event_type == t] for t in ORDER_STEPS[1:]
    ]
    plan_id = checkout.plan_id or 0
    dims = (plan_id, regions.get(plan_id, "") if plan_id else "", checkout.currency or "")
    return _rows("order", order_id, "base", user_id, _chain(checkout.occurred_at, later), dims, 0)


def percentile_rank(n: int, percent: int) -> int:
    """1-based nearest rank of the percent-th percentile among n values: ceil(percent * n / 100), at least 1."""
    return max(1, -(-n * percent // 100))


def locate_rank(buckets: dict[int, int], n: int, percent: int) -> tuple[int, int]:
    """(bucket, rank within it) of the percent-th nearest rank among n values counted per bucket."""
    rank = percentile_rank(n, percent)
    for bucket in sorted(b for b in buckets if buckets[b] > 0):
        if rank <= buckets[bucket]:
            break
        rank -= buckets[bucket]
    return bucket, rank


def nearest_rank(sorted_values: list, percent: int):
    """The nearest-rank percentile of sorted values; None when empty (p50 is the lower median)."""
    if not sorted_values:
        return None
    return sorted_values[percentile_rank(len(sorted_values), percent) - 1]


# Breakdown values -------------------------------------------------------------------
# A user entrant's plan, region and currency are those of its first checkout, and only within
# a window that holds that checkout (`attr_delay <= window`); outside it the key is NO_VALUE,
# shown as "(none)" (so is a checkout without a plan, region or currency). The value rollup keeps
# one key for all three, "plan id|currency": a plan's region is its plan's, which does not change.
VALUE_DIMENSIONS = ("plan", "region", "currency")
NO_VALUE = ""
TOP_VALUES = 10  # a breakdown shows its 10 largest values by entrants, then the rest as OTHER_VALUE
NONE_VALUE, OTHER_VALUE = "(none)", "Other"


def value_key(plan_id: int, currency: str, attr_delay: int, window_days: int) -> str:
    """The breakdown key of a step row within a window: "plan id|currency" of its attributed checkout, or NO_VALUE."""
    if attr_delay > window_days:
        return NO_VALUE
    return f"{plan_id}|{currency}"
