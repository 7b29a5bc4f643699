"""Deterministic demo activity as numpy arrays: users, orders, payments, activations.

Everything is drawn from one seeded generator, then ids are given in time order (the
order the live flows would have created the rows), so the bulk writer and the replay
through the services produce the same rows.
"""

import datetime as dt
from dataclasses import dataclass

import numpy as np

from app.demo.catalog import DemoPlan, demo_plans

DAY = 86_400
# Kinds of action, in the order they sort at the same second.
SIGNUP, CHECKOUT, PAYMENT_FAILED, PAID, ACTIVATED, REFUNDED = range(6)
EVENT_TYPES = {SIGNUP: "user_signup", CHECKOUT: "checkout_started", PAYMENT_FAILED: "payment_failed",
               PAID: "payment_succeeded", ACTIVATED: "esim_activated", REFUNDED: "payment_refunded"}
# Share of signups per hour of the UTC day.
HOURLY = np.array([2, 1, 1, 1, 1, 2, 3, 5, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 8, 7, 6, 4, 3], dtype=float)
# Monday..Sunday: trips are planned towards the weekend.
WEEKLY = np.array([0.9, 0.9, 0.95, 1.0, 1.15, 1.3, 1.2])


@dataclass
class DemoData:
    start: dt.datetime
    plans: list[DemoPlan]
    user_signup_at: np.ndarray  # epoch seconds, index = user id - 1
    order_user: np.ndarray  # index = order id - 1
    order_plan: np.ndarray  # plan index (plan id - 1)
    order_created_at: np.ndarray
    order_failed_at: np.ndarray  # -1: no failed attempt
    order_paid_at: np.ndarray  # -1: not paid
    order_activated_at: np.ndarray  # -1: not activated
    order_profile: np.ndarray  # profile id, 0 when not activated
    profiles_per_plan: np.ndarray
    order_refunded_at: np.ndarray  # -1: no refund (one admin refund per refunded order)
    order_refund_amount: np.ndarray  # 0: no refund; the price (full) or half of it (partial)

    @property
    def event_count(self) -> int:
        return int(
            len(self.user_signup_at)
            + len(self.order_user)
            + (self.order_failed_at >= 0).sum()
            + (self.order_paid_at >= 0).sum()
            + (self.order_activated_at >= 0).sum()
            + (self.order_refunded_at >= 0).sum()
        )


def generate(*, days: int, users: int, seed: int, now: dt.datetime) -> DemoData:
    """Activity over `days` days ending at `now`, for about `users` signups."""
    rng = np.random.default_rng(seed)
    plans = demo_plans()
    start = dt.datetime.combine(now.date() - dt.timedelta(days=days - 1), dt.time(), tzinfo=dt.UTC)
    start_ts, now_ts = int(start.timestamp()), int(now.timestamp())

    # Signups: growth ×3 over the span, weekly seasonality, a daily rhythm.
    day_index = np.arange(days)
    weekday = (start.weekday() + day_index) % 7
    weights = np.exp(np.log(3) * day_index / max(days - 1, 1)) * WEEKLY[weekday]
    signup_day = rng.choice(days, size=users, p=weights / weights.sum())
    hour = rng.choice(24, size=users, p=HOURLY / HOURLY.sum())
    signup = start_ts + signup_day * DAY + hour * 3600 + rng.integers(0, 3600, size=users)
    signup = np.sort(signup[signup <= now_ts])

    # Checkouts: 42 % of users start one; some come back for more trips.
    buyer = rng.random(len(signup)) < 0.42
    extra = rng.geometric(0.6, size=len(signup)) - 1
    per_user = np.where(buyer, 1 + extra, 0)
    order_user = np.repeat(np.arange(len(signup)), per_user)
    nth = np.arange(len(order_user)) - np.repeat(np.cumsum(per_user) - per_user, per_user)
    quick = rng.random(len(order_user)) < 0.6
    first_delay = np.where(quick, rng.lognormal(np.log(1200), 1.0, len(order_user)), rng.lognormal(np.log(3 * DAY), 1.2, len(order_user)))
    gaps = rng.exponential(40 * DAY, len(order_user)) * (nth > 0)
    # Each order comes the sum of its user's earlier gaps after the first one.
    first_of_user = np.arange(len(order_user)) - nth
    running = np.cumsum(gaps)
    gap_sum = running - (running[first_of_user] - gaps[first_of_user]) if len(gaps) else gaps
    created = signup[order_user] + 1 + first_delay.astype(np.int64) + gap_sum.astype(np.int64)
    popularity = np.array([p.popularity for p in plans])
    order_plan = rng.choice(len(plans), size=len(order_user), p=popularity / popularity.sum())

    # Payments: most succeed, a few fail and some of those are retried.
    outcome = rng.random(len(order_user))
    pay_delay = 1 + rng.lognormal(np.log(90), 0.8, len(order_user)).astype(np.int64)
    retry_delay = 1 + rng.lognormal(np.log(3600), 1.0, len(order_user)).astype(np.int64)
    failed = np.where(outcome >= 0.70, created + pay_delay, -1)
    failed[outcome >= 0.76] = -1
    paid = np.where(outcome < 0.70, created + pay_delay, -1)
    retried = (outcome >= 0.70) & (outcome < 0.73)
    paid[retried] = failed[retried] + retry_delay[retried]
    activate = rng.random(len(order_user)) < 0.9
    activated = np.where(activate & (paid >= 0), paid + 1 + rng.lognormal(np.log(2700), 1.5, len(order_user)).astype(np.int64), -1)

    # Order ids in checkout order; nothing after now.
    keep = created <= now_ts
    order = np.lexsort((order_user[keep], created[keep]))
    columns = [a[keep][order] for a in (order_user, order_plan, created, failed, paid, activated)]
    order_user, order_plan, created, failed, paid, activated = columns
    failed[failed > now_ts] = -1
    paid[paid > now_ts] = -1
    activated[(activated > now_ts) | (paid < 0)] = -1

    profile, per_plan = _assign_profiles(order_plan, activated, len(plans))
    refunded, refund_amount = _refunds(rng, order_plan, paid, activated, plans, now_ts)
    return DemoData(start, plans, signup, order_user + 1, order_plan, created, failed, paid, activated, profile, per_plan,
                    refunded, refund_amount)


def _refunds(rng, order_plan, paid, activated, plans, now_ts) -> tuple[np.ndarray, np.ndarray]:
    """About 3 % of paid orders are refunded by support a day or two after payment (or activation):
    two in three in full, the others by half. Drawn last, so the rest of the data is as before."""
    chosen = rng.random(len(paid)) < 0.03
    delay = 1 + rng.lognormal(np.log(1.5 * DAY), 0.7, len(paid)).astype(np.int64)
    full = rng.random(len(paid)) < 2 / 3
    refunded = np.where(chosen & (paid >= 0), np.maximum(paid, activated) + delay, -1)
    refunded[refunded > now_ts] = -1
    prices = np.array([p.price_minor_units for p in plans])[order_plan]
    amount = np.where(refunded >= 0, np.where(full, prices, prices // 2), 0)
    return refunded, amount


def _assign_profiles(order_plan: np.ndarray, activated: np.ndarray, plan_count: int) -> tuple[np.ndarray, np.ndarray]:
    """Each plan's profiles in id order go to its activations in time order (lowest free id first)."""
    done = np.flatnonzero(activated >= 0)
    used = np.bincount(order_plan[done], minlength=plan_count)
    per_plan = used + np.maximum(10, (used * 0.15).astype(np.int64))  # spare stock on every plan
    first_id = np.concatenate(([1], 1 + np.cumsum(per_plan)[:-1]))
    sequence = done[np.lexsort((done, activated[done]))]
    plans = order_plan[sequence]
    by_plan = np.argsort(plans, kind="stable")
    rank = np.empty(len(sequence), dtype=np.int64)
    counts = np.bincount(plans, minlength=plan_count)
    rank[by_plan] = np.arange(len(sequence)) - np.repeat(np.cumsum(counts) - counts, counts)
    profile = np.zeros(len(order_plan), dtype=np.int64)
    profile[sequence] = first_id[plans] + rank
    return profile, per_plan
