"""Repeat-buyer retention: cohorts by first payment, and who paid again in the periods after."""

import datetime as dt
from collections import Counter, defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.analytics import AnalyticsEvent, EventType
from app.models.funnel import RetentionRollup, UserPaidPeriod
from app.schemas.funnel import RetentionCohort, RetentionResponse
from app.services import zones
from app.services.funnel_store import paid_periods, pending_retention, retention_contributions, rollup_zone_name

INTERVALS = ("week", "month")


def retention(
    session: Session, *, interval: str, start: dt.date, end: dt.date, tz: str, internal_user_ids: frozenset[int] = frozenset(),
    exclude_internal: bool = False, clamped: bool = False,
) -> RetentionResponse:
    """Cohorts = the periods (ISO weeks / months of `tz`) holding a day of the range; offsets up to the range's end."""
    first, last = zones.period_start(start, interval), zones.period_start(end, interval)
    if tz == rollup_zone_name(session):
        counts, source = _from_rollup(session, interval, first, last, internal_user_ids), "rollup"
    else:
        counts, source = _from_events(session, interval, first, last, tz, internal_user_ids), "events"
    return retention_response(
        counts, interval=interval, start=start, end=end, tz=tz, exclude_internal=exclude_internal, clamped=clamped, source=source
    )


def retention_response(
    counts: Counter, *, interval: str, start: dt.date, end: dt.date, tz: str, exclude_internal: bool, clamped: bool,
    source: str, **engine_info,
) -> RetentionResponse:
    """The response of either engine from the users per (cohort start, period offset); offset 0 is the cohort's size."""
    first, last = zones.period_start(start, interval), zones.period_start(end, interval)
    cohorts = []
    c = first
    while c <= last:
        cohorts.append(c)
        c = zones.add_periods(c, 1, interval)
    out = []
    for cohort in cohorts:
        horizon = zones.period_offset(cohort, last, interval)
        size = counts.get((cohort, 0), 0)
        retained = [counts.get((cohort, i), 0) for i in range(1, horizon + 1)]
        out.append(
            RetentionCohort(
                cohort_start=cohort.isoformat(), size=size, retained=retained,
                rates=[n / size if size else None for n in retained],
            )
        )
    return RetentionResponse(
        **engine_info,
        interval=interval, start_date=start.isoformat(), end_date=end.isoformat(), clamped=clamped, tz=tz,
        exclude_internal=exclude_internal, cohorts=out, source=source,
    )


def _from_rollup(session, interval, first, last, internal) -> Counter:
    r = RetentionRollup
    counts = Counter()
    for cohort, offset, users in session.connection().execute(
        select(r.cohort_start, r.period_offset, r.users).where(r.interval == interval, r.cohort_start >= first, r.cohort_start <= last)
    ):
        counts[(_as_date(cohort), offset)] += int(users)
    if internal:
        p = UserPaidPeriod
        periods: dict[int, set] = defaultdict(set)
        for user_id, start in session.execute(
            select(p.user_id, p.period_start).where(p.interval == interval, p.user_id.in_(sorted(internal)))
        ):
            periods[user_id].add(_as_date(start))
        for starts in periods.values():
            for (_, cohort, offset), n in retention_contributions({interval: starts}).items():
                counts[(cohort, offset)] -= n
    # Users queued for the catch-up: what applying them would change (exact without waiting).
    counts.update(pending_retention(session, interval, internal))
    return counts


def _from_events(session, interval, first, last, tz, internal) -> Counter:
    """Exact in any zone: every payment of the users whose first payment may fall in the cohorts."""
    zone = zones.zone(tz)
    e = AnalyticsEvent
    before = zones.local_midnight(zones.add_periods(last, 1, interval), zone)
    payments: dict[int, list] = defaultdict(list)
    for user_id, at in session.execute(
        select(e.user_id, e.occurred_at).where(e.event_type == EventType.PAYMENT_SUCCEEDED, e.occurred_at < before, e.user_id.is_not(None))
    ):
        if user_id not in internal:
            payments[user_id].append(at)
    counts = Counter()
    for times in payments.values():
        for (_, cohort, offset), n in retention_contributions({interval: paid_periods(times, zone)[interval]}).items():
            if first <= cohort <= last:
                counts[(cohort, offset)] += n
    return counts


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
