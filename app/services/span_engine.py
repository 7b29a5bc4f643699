"""A range's figures in any zone from the UTC-day rollups plus the events at its two ends.

The local days start..end of a zone are, in UTC, the instants [start 00:00, end+1 00:00):
some whole UTC days and, at each end, a slice of less than a day. The range's totals,
exact unique users and top plans are those of the whole UTC days (the rollups and user
bitmaps; less the internal users' own events when they are left out) plus the events of
the two slices — a day's events at most, whatever the range's length. Per-day figures
(the timeseries, the projections' history) are the local daily totals when the zone is the
rollups' own (ANALYTICS_TIMEZONE), kept in the business transaction like the UTC ones;
in any other zone the events grouped by local day (`EventsEngine`), since a local day
is then parts of two UTC days.
"""

import datetime as dt
from functools import reduce

from pyroaring import BitMap
from sqlalchemy.orm import Session

from app.models.analytics import AnalyticsLocalDailyTotal, EventType
from app.services import rollup_repo, unique_users
from app.services.dates import DayRange
from app.services.events_engine import EventsEngine, UserFilter, add_totals, subtract_totals, with_names
from app.services.excluded_users import FewUsersEngine, SubtractingEngine
from app.services.rollup_repo import DayRow, PlanRevenue, Totals

SIGNUP = EventType.USER_SIGNUP.value
DAY = dt.timedelta(days=1)
ALL_PLANS = 1_000_000  # top_plans' limit that keeps every (plan, currency) row


def _utc_midnight_at_or_after(moment: dt.datetime) -> dt.datetime:
    midnight = dt.datetime.combine(moment.astimezone(dt.UTC).date(), dt.time(), tzinfo=dt.UTC)
    return midnight if midnight == moment else midnight + DAY


def _utc_midnight_at_or_before(moment: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(moment.astimezone(dt.UTC).date(), dt.time(), tzinfo=dt.UTC)


def split(start_at: dt.datetime, end_before: dt.datetime) -> tuple[DayRange | None, list[tuple[dt.datetime, dt.datetime]]]:
    """The whole UTC days inside [start_at, end_before), and the slices before and after them."""
    first, after = _utc_midnight_at_or_after(start_at), _utc_midnight_at_or_before(end_before)
    if first >= after:
        return None, [(start_at, end_before)] if start_at < end_before else []
    edges = [(start_at, first)] if start_at < first else []
    if after < end_before:
        edges.append((after, end_before))
    return DayRange(first.date(), (after - DAY).date()), edges


class LocalDays:
    """The per-day questions from the local daily totals (the rollups' zone)."""

    name = "sql"

    def __init__(self, session: Session) -> None:
        self.session = session

    def daily(self, days: DayRange, types: list[str]) -> list[DayRow]:
        return rollup_repo.daily(self.session, days, types, table=AnalyticsLocalDailyTotal)

    def rows_by_day(self, days: DayRange, types: list[str]) -> dict[tuple[dt.date, str, str], tuple[int, int]]:
        return rollup_repo.rows_by_day(self.session, days, types, table=AnalyticsLocalDailyTotal)

    def forecast_series_by_day(self, start: dt.date, end: dt.date, currency: str) -> dict[dt.date, tuple[int, int, int]]:
        return rollup_repo.forecast_series_by_day(self.session, start, end, currency, table=AnalyticsLocalDailyTotal)


class SpanEngine(EventsEngine):
    """Range totals, unique users and top plans of any zone's local days, fast; per-day rows from the events."""

    def __init__(self, session: Session, zone_name: str, *, excluded: frozenset[int] = frozenset(), today: dt.date | None = None) -> None:
        super().__init__(session, zone_name, users=UserFilter(excluded) if excluded else None)
        self.today = today
        self.excluded = excluded
        self.internal = FewUsersEngine(session, "UTC", excluded) if excluded else None

    def _local_days(self):
        """The local daily totals (less the internal users' events) when the zone is the rollups' own, else None."""
        if self.zone_name != rollup_repo.local_days_zone(self.session):
            return None
        local = LocalDays(self.session)
        return SubtractingEngine(local, FewUsersEngine(self.session, self.zone_name, self.excluded)) if self.excluded else local

    def daily(self, days: DayRange, types: list[str]) -> list[DayRow]:
        local = self._local_days()
        return local.daily(days, types) if local else super().daily(days, types)

    def rows_by_day(self, days: DayRange, types: list[str]) -> dict[tuple[dt.date, str, str], tuple[int, int]]:
        local = self._local_days()
        return local.rows_by_day(days, types) if local else super().rows_by_day(days, types)

    def forecast_series_by_day(self, start: dt.date, end: dt.date, currency: str) -> dict[dt.date, tuple[int, int, int]]:
        local = self._local_days()
        return local.forecast_series_by_day(start, end, currency) if local else super().forecast_series_by_day(start, end, currency)

    def totals_between(self, start_at: dt.datetime, end_before: dt.datetime) -> Totals:
        whole, edges = split(start_at, end_before)
        parts = [self.totals_of_spans(edges)]
        if whole:
            from_rollups = rollup_repo.totals(self.session, whole)
            parts.append(subtract_totals(from_rollups, self.internal.totals(whole)) if self.internal else from_rollups)
        return reduce(add_totals, parts)

    def totals(self, days: DayRange) -> Totals:
        return self.totals_between(*self.span(days))

    def unique_users(self, days: DayRange, types: list[str]) -> dict[str, int]:
        whole, edges = split(*self.span(days))
        at_ends = self.user_ids_of_spans(edges, types)
        result = {}
        if whole:
            signups, sets = unique_users.user_sets(self.session, whole, types, today=self.today)
            excluded = BitMap(self.excluded)
            if SIGNUP in types and self.internal:
                signups -= len(self.internal.user_ids_of_spans([self.internal.span(whole)], [SIGNUP])[SIGNUP])
        else:
            signups, sets, excluded = 0, {}, BitMap()
        for t in types:
            if t == SIGNUP:  # one signup per user: the days' signups are distinct users
                result[t] = signups + len(at_ends[t])
            else:
                result[t] = len((sets.get(t, BitMap()) - excluded) | BitMap(at_ends[t]))
        return result

    def top_plans(self, days: DayRange, limit: int) -> list[PlanRevenue]:
        whole, edges = split(*self.span(days))
        rows: dict[tuple[int, str], list[int]] = {}
        names: dict[int, str | None] = {}
        if whole:
            for row in rollup_repo.top_plans(self.session, whole, ALL_PLANS):
                rows[(row.plan_id, row.currency)] = [row.revenue_minor_units, row.payments]
                names[row.plan_id] = row.plan_name
            for key, (revenue, n) in (self.internal.plan_totals(whole) if self.internal else {}).items():
                entry = rows.setdefault(key, [0, 0])
                entry[0] -= revenue
                entry[1] -= n
        for key, (revenue, n) in self.plan_totals_of_spans(edges).items():
            entry = rows.setdefault(key, [0, 0])
            entry[0] += revenue
            entry[1] += n
        ranked = sorted(((key, v) for key, v in rows.items() if v[1] > 0), key=lambda item: (-item[1][0], -item[1][1], *item[0]))[:limit]
        missing = [plan_id for (plan_id, _), _ in ranked if plan_id not in names]
        if missing:
            names.update({r.plan_id: r.plan_name for r in with_names(self.session, [(p, "", 0, 0) for p in missing])})
        return [PlanRevenue(plan_id, names.get(plan_id), cur, revenue, n) for (plan_id, cur), (revenue, n) in ranked]
