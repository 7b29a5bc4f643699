"""Keep the funnel and retention tables in step with the events (queue, catch-up, rebuild).

`record_event` does not touch these tables: it queues the event's user and order in
`analytics_funnel_pending`, one INSERT in the business transaction. The server's
background task (`bitmap_refresher.run`) calls `catch_up` every tick: in its own
transaction it recomputes the queued entrants from their own few events, read back
through the user_id / order_id indexes (so a late or out-of-order insert yields the
rows a rebuild would), applies only the difference to the rollups, and deletes the
queue rows it applied. Reports never wait for it: `pending_rows` recomputes the still
queued entrants in memory, and the readers replace those entrants' stored rows by them,
so every report equals a recount whatever the catch-up's lag.
"""

import datetime as dt
import secrets
from collections import Counter
from collections.abc import Iterable

from sqlalchemy import and_, bindparam, delete, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from app.config import get_settings
from app.models.analytics import AnalyticsEvent, EventType
from app.models.funnel import (
    STORED_WINDOWS,
    WINDOW_COLUMNS,
    FunnelFineGapWindowRollup,
    FunnelGapRollup,
    FunnelGapWindowRollup,
    FunnelMonthVersion,
    FunnelPending,
    FunnelRollup,
    FunnelStep,
    FunnelValueWindowRollup,
    FunnelWindowRollup,
    RetentionRollup,
    RollupMeta,
    UserPaidPeriod,
)
from app.models.plan import Plan
from app.models.user import User
from app.services import sqlcompat, zones
from app.services.funnel_spec import (
    MAX_WINDOW_DAYS,
    NO_VALUE,
    Event,
    StepRow,
    fine_bucket,
    order_rows,
    user_rows,
    value_key,
)

STEP_COLUMNS = list(StepRow.__dataclass_fields__)
ROLLUP_KEY = ("kind", "chain", "step", "period", "utc_day", "local_day", "delay_days")
GAP_KEY = ("kind", "chain", "step", "period", "utc_day", "local_day", "delay_days", "bucket")
WINDOW_KEY = ("kind", "chain", "step", "period", "utc_day", "local_day")
GAP_WINDOW_KEY = ("kind", "chain", "step", "period", "utc_day", "local_day", "bucket")
FINE_WINDOW_KEY = ("kind", "chain", "step", "period", "utc_day", "local_day", "fine")
VALUE_WINDOW_KEY = ("kind", "chain", "period", "utc_day", "local_day", "step", "bucket", "value")
RETENTION_KEY = ("interval", "cohort_start", "period_offset")
INTERVALS = ("week", "month")
ZONE_META = "local_zone"


def rollup_zone_name(session: Session) -> str:
    """The zone of the rollups' local days: the one recorded by the last rebuild, else ANALYTICS_TIMEZONE."""
    transaction = session.get_transaction()
    cached = session.info.get(ZONE_META)
    if cached is not None and cached[0] is transaction:
        return cached[1]  # read once per transaction: record_event runs this for every event
    name = session.connection().scalar(select(RollupMeta.value).where(RollupMeta.name == ZONE_META))
    name = name or get_settings().analytics_timezone
    session.info[ZONE_META] = (transaction, name)
    return name


def _event_rows(session: Session, where) -> tuple[list[tuple[Event, int | None]], dict[int, str]]:
    """The events matching `where` (with their user ids) and the regions of their plans, in one query."""
    e = AnalyticsEvent
    rows = session.execute(
        select(e.event_type, e.occurred_at, e.order_id, e.plan_id, e.currency, e.user_id, Plan.region)
        .outerjoin(Plan, Plan.id == e.plan_id)
        .where(where)
    ).all()
    regions = {r.plan_id: r.region for r in rows if r.plan_id and r.region is not None}
    return [(Event(t, at, o, p, c), u) for t, at, o, p, c, u, _ in rows], regions


def queue_event(session: Session, event: AnalyticsEvent) -> None:
    """Queue the entrants an event belongs to (the catch-up and the readers do the rest)."""
    if event.user_id or event.order_id:
        _queue(session, event.user_id, event.order_id)


def _queue(session: Session, user_id: int | None, order_id: int | None) -> None:
    # A Core INSERT: the ORM's unit of work for one more object costs more than the statement.
    session.execute(insert(FunnelPending.__table__), {"user_id": user_id, "order_id": order_id})


CATCH_UP_BATCH = 500


def catch_up(session: Session, *, limit: int = CATCH_UP_BATCH) -> int:
    """Apply up to `limit` queued rows to the funnel and retention tables; returns rows applied."""
    q = FunnelPending
    # Locked: a second worker waits, then finds the rows gone (it would apply them twice).
    queued = session.execute(select(q.id, q.user_id, q.order_id).order_by(q.id).limit(limit).with_for_update()).all()
    if not queued:
        return 0
    user_ids = sorted({u for _, u, _ in queued if u})
    order_ids = sorted({o for _, _, o in queued if o})
    refresh_entrants(session, user_ids=user_ids, order_ids=order_ids)
    if user_ids:
        refresh_retention(session, user_ids)
    session.execute(delete(q).where(q.id.in_([i for i, _, _ in queued])))
    return len(queued)


def pending_ids(session: Session) -> tuple[list[int], list[int]]:
    """The users and orders queued for the catch-up (few, unless it has stopped)."""
    q = FunnelPending
    rows = session.execute(select(q.user_id, q.order_id)).all()  # the ORM's execute: flushes queued rows first
    return sorted({u for u, _ in rows if u}), sorted({o for _, o in rows if o})


def pending_rows(session: Session, kind: str, chain: str) -> tuple[set[int], list[StepRow], list[StepRow]]:
    """The queued entrants of `kind`: their ids, their stored rows and their rows recomputed from the events."""
    user_ids, order_ids = pending_ids(session)
    ids = user_ids if kind == "user" else order_ids
    if not ids:
        return set(), [], []
    old_rows, new_rows = _recompute(
        session, user_ids=ids if kind == "user" else [], order_ids=ids if kind == "order" else []
    )
    return set(ids), [r for r in old_rows if r.chain == chain], [r for r in new_rows if r.chain == chain]


def refresh_entrants(session: Session, *, user_ids: list[int], order_ids: list[int]) -> None:
    """Recompute these users' and orders' step rows from their events and apply the difference."""
    zone = zones.zone(rollup_zone_name(session))
    old_rows, new_rows = _recompute(session, user_ids=user_ids, order_ids=order_ids)
    _apply(session, old_rows, new_rows, zone)


def _recompute(session: Session, *, user_ids: list[int], order_ids: list[int]) -> tuple[list[StepRow], list[StepRow]]:
    """(stored rows, rows recomputed from the events) of these entrants."""
    new_rows: list[StepRow] = []
    e = AnalyticsEvent
    # One query per index: MariaDB answers `user_id IN .. OR order_id IN ..` with a table scan.
    if user_ids:
        events, regions = _event_rows(session, e.user_id.in_(user_ids))
        verified = dict(session.execute(select(User.id, User.verified_at).where(User.id.in_(user_ids))).all())
        for user_id in user_ids:
            mine = [ev for ev, u in events if u == user_id]
            new_rows += user_rows(user_id, mine, verified.get(user_id), regions)
    if order_ids:
        events, regions = _event_rows(session, e.order_id.in_(order_ids))
        for order_id in order_ids:
            mine = [(ev, u) for ev, u in events if ev.order_id == order_id]
            owner = next((u for ev, u in mine if ev.event_type == EventType.CHECKOUT_STARTED and u), None)
            new_rows += order_rows(order_id, owner, [ev for ev, _ in mine], regions)
    s = FunnelStep
    # Equalities on the primary key's prefix (a row-value IN is a full scan on MariaDB).
    entrants = [and_(s.kind == "user", s.entrant_id.in_(user_ids))] if user_ids else []
    entrants += [and_(s.kind == "order", s.entrant_id.in_(order_ids))] if order_ids else []
    old_rows = [
        StepRow(*row)
        for row in session.execute(select(*(s.__table__.c[c] for c in STEP_COLUMNS)).where(or_(*entrants))).all()
    ] if entrants else []
    return old_rows, new_rows


def _key(row: StepRow) -> tuple:
    return (row.kind, row.entrant_id, row.chain, row.step)


def _apply(session: Session, old_rows: list[StepRow], new_rows: list[StepRow], zone) -> None:
    old = {_key(r): r for r in old_rows}
    new = {_key(r): r for r in new_rows}
    removed = [r for k, r in old.items() if new.get(k) != r]
    added = [r for k, r in new.items() if old.get(k) != r]
    if not removed and not added:
        return
    t = FunnelStep.__table__
    if removed:
        session.execute(
            delete(t).where(
                t.c.kind == bindparam("k"), t.c.entrant_id == bindparam("e"), t.c.chain == bindparam("c"), t.c.step == bindparam("s")
            ),
            [{"k": r.kind, "e": r.entrant_id, "c": r.chain, "s": r.step} for r in removed],
        )
    if added:
        session.execute(insert(t), [r.as_dict() for r in added])
    deltas = RollupDeltas()
    for sign, rows in ((-1, removed), (1, added)):
        for r in rows:
            deltas.count(r, zone, sign)
    bump_months(session, {day for r in (*removed, *added) for p, u, lo in _days(r, zone) if p == "m" for day in (u, lo)})
    _add(session, FunnelRollup, ROLLUP_KEY, deltas.rollup)
    _add(session, FunnelGapRollup, GAP_KEY, deltas.gaps)
    for model, key_names, rows in deltas.window_rows():
        sqlcompat.add_counts_many(session, model.__table__, key_names, WINDOW_COLUMNS, rows)


def bump_months(session: Session, months: Iterable[dt.date]) -> None:
    """Change the version tokens of these months (first days) in the rollups' transaction: readers' kept sums of them go stale."""
    # secrets, not random: whoever seeds the global random (hypothesis does, per example) would repeat the steps.
    rows = [{"month": month, "version": 1 + secrets.randbits(32)} for month in sorted(set(months))]
    sqlcompat.add_counts_many(session, FunnelMonthVersion.__table__, ("month",), ("version",), rows)


def _add(session: Session, model, key_names: tuple[str, ...], deltas: Counter) -> None:
    counter = "users" if model is RetentionRollup else "entrants"
    rows = [{**dict(zip(key_names, key, strict=True)), counter: n} for key, n in sorted(deltas.items()) if n]
    sqlcompat.add_counts_many(session, model.__table__, key_names, (counter,), rows)


def _days(row: StepRow, zone) -> list[tuple[str, dt.date, dt.date]]:
    utc_day = row.entry_at.astimezone(dt.UTC).date()
    local = zones.local_day(row.entry_at, zone)
    return [("d", utc_day, local), ("m", utc_day.replace(day=1), local.replace(day=1))]


class RollupDeltas:
    """What step rows add to (or, with sign -1, take from) the funnel rollups."""

    def __init__(self) -> None:
        self.rollup, self.gaps = Counter(), Counter()  # key with delay_days -> entrants
        self.windows: dict[tuple, list[int]] = {}  # key -> entrants within each stored window
        self.gap_windows: dict[tuple, list[int]] = {}
        self.fine_windows: dict[tuple, list[int]] = {}
        self.value_windows: dict[tuple, list[int]] = {}

    def count(self, row: StepRow, zone, sign: int = 1) -> None:
        """Add `sign` to the rollup rows a step row counts in (none once it is past every window)."""
        if row.delay_days > MAX_WINDOW_DAYS:
            return
        within = [sign if row.delay_days <= w else 0 for w in STORED_WINDOWS]
        value_counts = _value_windows(row, within)
        for p, u, lo in _days(row, zone):
            self.rollup[(row.kind, row.chain, row.step, p, u, lo, row.delay_days)] += sign
            _add_to(self.windows, (row.kind, row.chain, row.step, p, u, lo), within)
            if row.step > 1:
                self.gaps[(row.kind, row.chain, row.step, p, u, lo, row.delay_days, row.bucket)] += sign
                _add_to(self.gap_windows, (row.kind, row.chain, row.step, p, u, lo, row.bucket), within)
                _add_to(self.fine_windows, (row.kind, row.chain, row.step, p, u, lo, fine_bucket(row.gap_us)), within)
            for value, within_value in value_counts.items():
                _add_to(self.value_windows, (row.kind, row.chain, p, u, lo, row.step, row.bucket, value), within_value)

    def window_rows(self) -> list[tuple]:
        """(model, key names, rows with every window column) of the window rollups, changed keys only."""
        return [
            (model, key_names, [
                {**dict(zip(key_names, key, strict=True)), **dict(zip(WINDOW_COLUMNS, counts, strict=True))}
                for key, counts in sorted(table.items()) if any(counts)
            ])
            for model, key_names, table in (
                (FunnelWindowRollup, WINDOW_KEY, self.windows), (FunnelGapWindowRollup, GAP_WINDOW_KEY, self.gap_windows),
                (FunnelFineGapWindowRollup, FINE_WINDOW_KEY, self.fine_windows),
                (FunnelValueWindowRollup, VALUE_WINDOW_KEY, self.value_windows),
            )
        ]


def _value_windows(row: StepRow, within: list[int]) -> dict[str, list[int]]:
    """The row's counts per stored window split by its breakdown key in each (NO_VALUE in the windows too short for its checkout)."""
    attributed = value_key(row.plan_id, row.currency, row.attr_delay, row.attr_delay)
    if attributed == NO_VALUE or row.attr_delay <= row.delay_days:
        return {attributed: within}  # the same value in every window that counts the row
    counts = {attributed: [n if row.attr_delay <= w else 0 for n, w in zip(within, STORED_WINDOWS, strict=True)]}
    counts[NO_VALUE] = [n if row.attr_delay > w else 0 for n, w in zip(within, STORED_WINDOWS, strict=True)]
    return counts


def _add_to(table: dict[tuple, list[int]], key: tuple, within: list[int]) -> None:
    counts = table.get(key)
    if counts is None:
        table[key] = list(within)
    else:
        for i, n in enumerate(within):
            counts[i] += n


def mark_verified(session: Session, user: User, now: dt.datetime) -> None:
    """Record the user's first successful code verification and queue its funnel rows for the catch-up."""
    changed = session.execute(
        update(User).where(User.id == user.id, User.verified_at.is_(None)).values(verified_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed:
        session.refresh(user, ["verified_at"])
        _queue(session, user.id, None)


# Retention ---------------------------------------------------------------------------


def paid_periods(payments: Iterable[dt.datetime], zone) -> dict[str, set[dt.date]]:
    days = {zones.local_day(at, zone) for at in payments}
    return {interval: {zones.period_start(d, interval) for d in days} for interval in INTERVALS}


def retention_contributions(periods: dict[str, set[dt.date]]) -> Counter:
    contributions = Counter()
    for interval, starts in periods.items():
        if starts:
            cohort = min(starts)
            for start in starts:
                contributions[(interval, cohort, zones.period_offset(cohort, start, interval))] += 1
    return contributions


def refresh_retention(session: Session, user_ids: list[int]) -> None:
    """Recompute the paid periods of these users and apply the change to the cohort rollup."""
    deltas = Counter()
    t = UserPaidPeriod.__table__
    for user_id, old, new in _paid_period_changes(session, user_ids):
        deltas.update(retention_contributions(new))
        deltas.subtract(retention_contributions(old))
        gone = [(i, s) for i in INTERVALS for s in old[i] - new[i]]
        fresh = [(i, s) for i in INTERVALS for s in new[i] - old[i]]
        if gone:
            session.execute(
                delete(t).where(t.c.user_id == user_id, tuple_(t.c.interval, t.c.period_start).in_(gone))
            )
        if fresh:
            # The primary key (user, interval, period) is the guard: one row per user and period.
            session.execute(insert(t), [{"user_id": user_id, "interval": i, "period_start": s} for i, s in fresh])
    _add(session, RetentionRollup, RETENTION_KEY, deltas)


def pending_retention(session: Session, interval: str, skip: frozenset[int] = frozenset()) -> Counter:
    """What applying the queue would add to the cohort rollup of `interval` (users in `skip` left out)."""
    user_ids, _ = pending_ids(session)
    deltas = Counter()
    for user_id, old, new in _paid_period_changes(session, [u for u in user_ids if u not in skip]):
        deltas.update(retention_contributions({interval: new[interval]}))
        deltas.subtract(retention_contributions({interval: old[interval]}))
    return Counter({(cohort, offset): n for (_, cohort, offset), n in deltas.items() if n})


def _paid_period_changes(session: Session, user_ids: list[int]):
    """(user, stored periods, periods recomputed from the payments) of the users whose periods differ."""
    if not user_ids:
        return []
    zone = zones.zone(rollup_zone_name(session))
    e, p = AnalyticsEvent, UserPaidPeriod
    payments: dict[int, list[dt.datetime]] = {u: [] for u in user_ids}
    for user_id, at in session.execute(
        select(e.user_id, e.occurred_at).where(e.user_id.in_(user_ids), e.event_type == EventType.PAYMENT_SUCCEEDED)
    ):
        payments[user_id].append(at)
    old: dict[int, dict[str, set]] = {u: {i: set() for i in INTERVALS} for u in user_ids}
    for user_id, interval, start in session.execute(select(p.user_id, p.interval, p.period_start).where(p.user_id.in_(user_ids))):
        old[user_id][interval].add(start)
    changes = []
    for user_id in user_ids:
        new = paid_periods(payments[user_id], zone)
        if new != old[user_id]:
            changes.append((user_id, old[user_id], new))
    return changes
