"""Rebuild the funnel and retention tables from analytics_events (and users.verified_at)."""

import datetime as dt
from collections import Counter, defaultdict

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.models.analytics import AnalyticsEvent, EventType
from app.models.funnel import (
    FunnelFineGapWindowRollup,
    FunnelGapRollup,
    FunnelGapWindowRollup,
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
from app.services import zones
from app.services.funnel_spec import Event, order_rows, user_rows
from app.services.funnel_store import (
    GAP_KEY,
    RETENTION_KEY,
    ROLLUP_KEY,
    STEP_COLUMNS,
    ZONE_META,
    RollupDeltas,
    bump_months,
    paid_periods,
    retention_contributions,
)

# The queue first: it is emptied before the events are read, so a row queued meanwhile
# stays for the catch-up (applying an entrant twice is harmless, missing one is not).
TABLES = (
    FunnelPending, FunnelStep, FunnelRollup, FunnelGapRollup, FunnelWindowRollup, FunnelGapWindowRollup, FunnelFineGapWindowRollup,
    FunnelValueWindowRollup, UserPaidPeriod, RetentionRollup, RollupMeta,
)
WINDOW_TABLES = (FunnelWindowRollup, FunnelGapWindowRollup, FunnelFineGapWindowRollup, FunnelValueWindowRollup)
ID_BATCH = 20_000


def rebuild_funnel(session: Session, *, with_windows: bool = True) -> dict[str, int]:
    """Replace every funnel/retention row by a recomputation in ANALYTICS_TIMEZONE; returns rows per table.

    `with_windows=False` leaves the window rollups alone: a migration older than them rebuilds
    the rest, and their own migrations then fill them."""
    zone_name = get_settings().analytics_timezone
    zone = zones.zone(zone_name)
    tables = TABLES if with_windows else tuple(m for m in TABLES if m not in WINDOW_TABLES)
    r = FunnelRollup
    months = {day for column in (r.utc_day, r.local_day) for day in session.scalars(select(column).where(r.period == "m").distinct())}
    for model in tables:
        session.execute(delete(model))
    session.execute(insert(RollupMeta).values(name=ZONE_META, value=zone_name))
    regions = dict(session.execute(select(Plan.id, Plan.region)).all())
    deltas, retention = RollupDeltas(), Counter()
    e = AnalyticsEvent
    columns = (e.event_type, e.occurred_at, e.order_id, e.plan_id, e.currency, e.user_id)
    from app.demo.bulk import BulkWriter  # app.demo imports this module: import late

    session.flush()
    writer = BulkWriter(session)
    as_stored = _datetime_writer(session)

    def write(rows) -> None:
        writer.write(
            FunnelStep.__tablename__, STEP_COLUMNS,
            [[tuple(as_stored(v) if isinstance(v, dt.datetime) else v for v in (getattr(r, c) for c in STEP_COLUMNS)) for r in rows]],
        )
        for r in rows:
            deltas.count(r, zone)

    for low, high in _id_batches(session, e.user_id):
        events = defaultdict(list)
        for t, at, o, p, c, u in session.execute(select(*columns).where(e.user_id.between(low, high))):
            events[u].append(Event(t, at, o, p, c))
        verified = dict(
            session.execute(select(User.id, User.verified_at).where(User.id.between(low, high), User.verified_at.is_not(None))).all()
        )
        rows, periods = [], []
        for user_id, mine in events.items():
            rows += user_rows(user_id, mine, verified.get(user_id), regions)
            payments = [ev.occurred_at for ev in mine if ev.event_type == EventType.PAYMENT_SUCCEEDED]
            if payments:
                paid = paid_periods(payments, zone)
                retention.update(retention_contributions(paid))
                periods += [{"user_id": user_id, "interval": i, "period_start": s} for i, starts in paid.items() for s in starts]
        write(rows)
        if periods:
            session.connection().execute(insert(UserPaidPeriod.__table__), periods)

    for low, high in _id_batches(session, e.order_id):
        events = defaultdict(list)
        owners = {}
        for t, at, o, p, c, u in session.execute(select(*columns).where(e.order_id.between(low, high))):
            events[o].append(Event(t, at, o, p, c))
            if t == EventType.CHECKOUT_STARTED and u:
                owners[o] = u
        rows = []
        for order_id, mine in events.items():
            rows += order_rows(order_id, owners.get(order_id), mine, regions)
        write(rows)

    # Every month before and after changes its version token (funnel_month_cache).
    if with_windows:  # older migrations rebuild before the token table exists (theirs have no readers yet)
        bump_months(session, months | {day for key in deltas.rollup if key[3] == "m" for day in key[4:6]})
    _insert_counts(session, FunnelRollup, ROLLUP_KEY, "entrants", deltas.rollup)
    _insert_counts(session, FunnelGapRollup, GAP_KEY, "entrants", deltas.gaps)
    for model, _, rows in deltas.window_rows() if with_windows else []:
        _insert_rows(session, model, rows)
    _insert_counts(session, RetentionRollup, RETENTION_KEY, "users", retention)
    return {m.__tablename__: session.scalar(select(func.count()).select_from(m)) for m in tables}


def _datetime_writer(session: Session):
    """Aware UTC datetimes as the driver should receive them (SQLite: SQLAlchemy's own text format)."""
    if session.get_bind().dialect.name == "sqlite":
        return lambda v: v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return lambda v: v.astimezone(dt.UTC).replace(tzinfo=None)


def _id_batches(session: Session, column):
    low, high = session.execute(select(func.min(column), func.max(column))).one()
    if low is None:
        return
    for start in range(low, high + 1, ID_BATCH):
        yield start, start + ID_BATCH - 1


def _insert_counts(session: Session, model, key_names, counter_name, counts: Counter) -> None:
    _insert_rows(session, model, [{**dict(zip(key_names, key, strict=True)), counter_name: n} for key, n in sorted(counts.items()) if n])


def _insert_rows(session: Session, model, rows: list[dict]) -> None:
    """Straight through the driver (`BulkWriter`): the ORM's bulk insert, and even Core's parameter
    processing, cost more per row than computing the rows did. Days go as ISO text."""
    if not rows:
        return
    from app.demo.bulk import BulkWriter  # app.demo imports this module: import late

    columns = list(rows[0])

    def plain(value):
        return value.isoformat() if isinstance(value, dt.date) else value

    chunks = ([tuple(plain(row[c]) for c in columns) for row in rows[start:start + 10_000]] for start in range(0, len(rows), 10_000))
    BulkWriter(session).write(model.__tablename__, columns, chunks)
