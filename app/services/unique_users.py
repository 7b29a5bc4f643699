"""Distinct users per event type over a range of days.

Distinct counts do not add up across days, so the rollups cannot answer them.
Small ranges are counted exactly from the events.
"""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models.analytics import AnalyticsEvent


def count_unique_users(session: Session, days, event_types: list[str], counts: dict[str, int]) -> tuple[dict[str, int], bool]:
    """Distinct users per type, and whether the figures are approximate."""
    del counts  # used by the sketch path once ranges outgrow the exact count
    return exact_unique_users(session, days, event_types), False


def exact_unique_users(session: Session, days, event_types: list[str]) -> dict[str, int]:
    e = AnalyticsEvent
    rows = session.execute(
        select(e.event_type, func.count(func.distinct(e.user_id)))
        .where(e.event_type.in_(event_types), e.occurred_at >= days.start_at, e.occurred_at < days.end_before)
        .group_by(e.event_type)
    ).all()
    found = {event_type: int(n) for event_type, n in rows}
    return {t: found.get(t, 0) for t in event_types}
