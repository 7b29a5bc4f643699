"""The internal users' events, taken away from another engine's answers (`exclude_internal=true`).

Internal users (admins, ANALYTICS_EXCLUDE_EMAILS) are few: their events are read by `user_id`
alone (`FewUsersEngine`) and subtracted from the rollups' or the warehouse's figures
(`SubtractingEngine`). Every figure is a sum, or a distinct count from which those users'
own distinct count can be taken away.
"""

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.analytics import AnalyticsEvent
from app.services import rollup_repo, zones
from app.services.dates import DayRange, as_date
from app.services.events_engine import PAID, EventsEngine, UserFilter, _minus, add_up, subtract_totals
from app.services.rollup_repo import AMOUNT_TYPES, DayRow, PlanRevenue, Totals


class FewUsersEngine(EventsEngine):
    """Only a few users' events (the internal ones): read once by `user_id` alone, then counted here.

    Asked by user id alone the database walks the user index; with a time range as well,
    a planner without statistics (SQLite's) may walk the range's events instead, which
    for a year of a big shop is most of the table.
    """

    def __init__(self, session: Session, zone_name: str, ids: frozenset[int]) -> None:
        super().__init__(session, zone_name, users=UserFilter(frozenset(ids), only=True))
        self._events: list[tuple] | None = None

    def events(self) -> list[tuple[dt.datetime, str, str, int, int | None, int]]:
        """(occurred_at, type, currency, amount counted, plan id, user id) of every event of the users."""
        if self._events is None:
            e = AnalyticsEvent
            ids = sorted(self.users.ids)
            rows = self._run(
                select(e.occurred_at, e.event_type, e.currency, e.amount_minor_units, e.plan_id, e.user_id).where(e.user_id.in_(ids))
            ) if ids else []
            self._events = [
                (at, kind, currency or "", (amount or 0) if kind in AMOUNT_TYPES else 0, plan_id, user_id)
                for at, kind, currency, amount, plan_id, user_id in rows
            ]
        return self._events

    def _in(self, spans) -> list[tuple]:
        return [event for event in self.events() if any(lo <= event[0] < hi for lo, hi in spans)]

    def totals_of_spans(self, spans) -> Totals:
        summed = add_up(((kind, currency), 1, amount) for _, kind, currency, amount, _, _ in self._in(spans))
        return rollup_repo._as_totals([(kind, cur, n, amount) for (kind, cur), (n, amount) in summed.items()])

    def user_ids_of_spans(self, spans, types: list[str]) -> dict[str, set[int]]:
        found: dict[str, set[int]] = {t: set() for t in types}
        for _, kind, _, _, _, user_id in self._in(spans):
            if kind in found:
                found[kind].add(user_id)
        return found

    def plan_totals_of_spans(self, spans) -> dict[tuple[int, str], tuple[int, int]]:
        return add_up(((plan_id, currency), amount, 1) for _, kind, currency, amount, plan_id, _ in self._in(spans)
                      if kind == PAID and plan_id is not None)

    def unique_users(self, days: DayRange, types: list[str]) -> dict[str, int]:
        return {t: len(ids) for t, ids in self.user_ids_of_spans([self.span(days)], types).items()}

    def rows_by_day(self, days: DayRange, types: list[str]) -> dict[tuple[dt.date, str, str], tuple[int, int]]:
        return add_up(((zones.local_day(at, self.tz), kind, currency), 1, amount)
                      for at, kind, currency, amount, _, _ in self._in([self.span(days)]) if kind in types)

    def plan_rows_by_day(self, days: DayRange) -> list[tuple]:
        summed = add_up(((zones.local_day(at, self.tz), plan_id, currency), 1, amount)
                        for at, kind, currency, amount, plan_id, _ in self._in([self.span(days)]) if kind == PAID and plan_id is not None)
        return [(*key, n, amount) for key, (n, amount) in sorted(summed.items())]

    def first_event_day(self) -> dt.date | None:
        return min((zones.local_day(event[0], self.tz) for event in self.events()), default=None)


class SubtractingEngine:
    """Another engine's answers less what the users of `part` (an `EventsEngine` with only=True) did."""

    def __init__(self, base, part: EventsEngine) -> None:
        self.base = base
        self.part = part
        self.name = base.name
        self.excluded = part.users.ids if part.users else frozenset()

    def __getattr__(self, name: str):
        return getattr(self.base, name)

    def fresh_as_of(self) -> dt.datetime | None:
        return self.base.fresh_as_of()

    def totals(self, days: DayRange) -> Totals:
        return subtract_totals(self.base.totals(days), self.part.totals(days))

    def totals_many(self, ranges: list[DayRange]) -> list[Totals]:
        return [subtract_totals(whole, part) for whole, part in zip(self.base.totals_many(ranges), self.part.totals_many(ranges), strict=True)]

    def daily(self, days: DayRange, types: list[str]) -> list[DayRow]:
        less = {row.day: row for row in self.part.daily(days, types)}
        base = self.base.daily(days, types)
        # A currency whose revenue falls to 0 stays while payments in it remain (free plans): the day
        # rows count payments over all currencies, so those few days are looked up per currency.
        unsure = sorted(
            row.day for row in base if row.day in less and (row.payments or 0) - (less[row.day].payments or 0) > 0
            and any(v == 0 for c, v in _minus(row.revenue, less[row.day].revenue).items() if c in less[row.day].revenue)
        )
        remaining = self._payments_by_currency(DayRange(unsure[0], unsure[-1])) if unsure else {}
        result = []
        for row in base:
            minus = less.get(row.day)
            if minus is None:
                result.append(row)
                continue

            def kept(c: str, v: int, day=row.day, minus=minus) -> bool:
                return bool(v) or c not in minus.revenue or remaining.get((day, c), 0) > 0

            result.append(DayRow(
                row.day,
                _minus(row.counts, minus.counts),
                {c: v for c, v in _minus(row.revenue, minus.revenue).items() if kept(c, v)},
                refunds=None if row.refunds is None else {c: v for c, v in _minus(row.refunds, minus.refunds).items() if v or c not in minus.refunds},
                payments_failed=None if row.payments_failed is None else row.payments_failed - minus.payments_failed,
                payments=None if row.payments is None else row.payments - minus.payments,
            ))
        return result

    def _payments_by_currency(self, days: DayRange) -> dict[tuple[dt.date, str], int]:
        """(day, currency) -> payments left once the internal users' are taken away."""
        return {(day, currency): n for (day, kind, currency), (n, _) in self.rows_by_day(days, [PAID]).items() if kind == PAID}

    def unique_users(self, days: DayRange, types: list[str]) -> dict[str, int]:
        # An excluded user is in the base's distinct count exactly when they have such an event in the range.
        return _minus(self.base.unique_users(days, types), self.part.unique_users(days, types))

    def top_plans(self, days: DayRange, limit: int) -> list[PlanRevenue]:
        less = self.part.plan_totals(days)
        # Taking amounts away only moves rows down: the true top `limit` lie in the base's top limit + len(less).
        rows = []
        for row in self.base.top_plans(days, limit + len(less)):
            revenue, n = less.get((row.plan_id, row.currency), (0, 0))
            if row.payments - n > 0:
                rows.append(PlanRevenue(row.plan_id, row.plan_name, row.currency, row.revenue_minor_units - revenue, row.payments - n))
        rows.sort(key=lambda r: (-r.revenue_minor_units, -r.payments, r.plan_id, r.currency))
        return rows[:limit]

    def rows_by_day(self, days: DayRange, types: list[str]) -> dict[tuple[dt.date, str, str], tuple[int, int]]:
        base = self.base.rows_by_day(days, types) if hasattr(self.base, "rows_by_day") else rollup_repo.rows_by_day(self.part.session, days, types)
        less = self.part.rows_by_day(days, types)
        result = {}
        for key, (n, amount) in base.items():
            less_n, less_amount = less.get(key, (0, 0))
            if n - less_n:
                result[key] = (n - less_n, amount - less_amount)
        return result

    def plan_rows_by_day(self, days: DayRange) -> list[tuple]:
        base = self.base.plan_rows_by_day(days) if hasattr(self.base, "plan_rows_by_day") else rollup_repo.plan_rows_by_day(self.part.session, days)
        less = {(d, p, c): (n, amount) for d, p, c, n, amount in self.part.plan_rows_by_day(days)}
        result = []
        for day, plan_id, currency, n, amount in base:
            less_n, less_amount = less.get((as_date(day), plan_id, currency), (0, 0))
            if n - less_n:
                result.append((day, plan_id, currency, n - less_n, amount - less_amount))
        return result

    def forecast_series_by_day(self, start: dt.date, end: dt.date, currency: str) -> dict[dt.date, tuple[int, int, int]]:
        less = self.part.forecast_series_by_day(start, end, currency)
        result = {}
        for day, values in self.base.forecast_series_by_day(start, end, currency).items():
            minus = less.get(day, (0, 0, 0))
            values = tuple(v - m for v, m in zip(values, minus, strict=True))
            if any(values):
                result[day] = values
        return result

    def first_event_day(self) -> dt.date | None:
        return self.base.first_event_day()

