"""The report questions over another zone's local days, answered by ClickHouse from its events.

The warehouse's rollups hold UTC days; a local day is parts of two of them. ClickHouse
groups its own copy of the events by `toDate(occurred_at, zone)` (DST handled by its
time-zone database), reading them with `FINAL` so a row shipped twice counts once, as
the rollups do. Internal users are left out with `user_id NOT IN (...)`.
"""

import datetime as dt

from app.models.analytics import EventType
from app.services import rollup_repo, zones
from app.services.clickhouse_client import literal
from app.services.dates import DayRange
from app.services.events_engine import day_rows, forecast_series, money_and
from app.services.rollup_repo import AMOUNT_TYPES, DayRow, PlanRevenue, Totals

PAID, SIGNUP = EventType.PAYMENT_SUCCEEDED.value, EventType.USER_SIGNUP.value


class ClickHouseZoneEngine:
    """`ReportEngine` in the local days of `zone_name`, from a `ClickHouseEngine`'s events table."""

    name = "clickhouse"

    def __init__(self, warehouse_engine, zone_name: str, excluded: frozenset[int] = frozenset()) -> None:
        self.base = warehouse_engine
        self.client = warehouse_engine.client
        self.zone_name = zone_name
        self.tz = zones.zone(zone_name)
        self.excluded = excluded

    def fresh_as_of(self) -> dt.datetime | None:
        return self.base.fresh_as_of()

    def span(self, days: DayRange) -> tuple[dt.datetime, dt.datetime]:
        return zones.day_span(days.start, days.end, self.tz)

    def _events(self, start_at: dt.datetime, end_before: dt.datetime, where: str = "") -> str:
        condition = f"occurred_at >= {literal(start_at)} AND occurred_at < {literal(end_before)}"
        if self.excluded:
            condition += f" AND user_id NOT IN {literal(sorted(self.excluded))}"
        if where:
            condition += f" AND {where}"
        return f"(SELECT event_type, user_id, plan_id, amount_minor_units, currency, occurred_at FROM {self.base.table} FINAL WHERE {condition})"

    def _day(self) -> str:
        return f"toDate(occurred_at, {literal(self.zone_name)})"

    def _amount(self) -> str:
        return f"sumIf(amount_minor_units, event_type IN {literal(list(AMOUNT_TYPES))})"

    def totals_between(self, start_at: dt.datetime, end_before: dt.datetime) -> Totals:
        rows = self.client.rows(
            f"SELECT event_type, currency, count(), {self._amount()} FROM {self._events(start_at, end_before)} GROUP BY event_type, currency"
        )
        return rollup_repo._as_totals([(kind, currency, int(n), int(amount)) for kind, currency, n, amount in rows])

    def totals(self, days: DayRange) -> Totals:
        return self.totals_between(*self.span(days))

    def totals_many(self, ranges: list[DayRange]) -> list[Totals]:
        return [self.totals(days) for days in ranges]

    def rows_by_day(self, days: DayRange, types: list[str]) -> dict[tuple[dt.date, str, str], tuple[int, int]]:
        rows = self.client.rows(
            f"SELECT {self._day()} AS day, event_type, currency, count(), {self._amount()} "
            f"FROM {self._events(*self.span(days), f'event_type IN {literal(list(types))}')} GROUP BY day, event_type, currency"
        )
        return {(day, kind, currency): (int(n), int(amount)) for day, kind, currency, n, amount in rows}

    def daily(self, days: DayRange, types: list[str]) -> list[DayRow]:
        return day_rows(self.rows_by_day(days, money_and(types)), types)

    def unique_users(self, days: DayRange, types: list[str]) -> dict[str, int]:
        rows = self.client.rows(
            f"SELECT event_type, uniqExact(user_id) FROM {self._events(*self.span(days), f'event_type IN {literal(list(types))} AND user_id != 0')} "
            "GROUP BY event_type"
        )
        found = {kind: int(n) for kind, n in rows}
        return {t: found.get(t, 0) for t in types}

    def _paid(self, days: DayRange) -> str:
        return self._events(*self.span(days), f"event_type = {literal(PAID)} AND plan_id != 0")

    def top_plans(self, days: DayRange, limit: int) -> list[PlanRevenue]:
        rows = self.client.rows(
            f"SELECT plan_id, currency, sum(amount_minor_units) AS revenue, count() AS payments FROM {self._paid(days)} "
            f"GROUP BY plan_id, currency ORDER BY revenue DESC, payments DESC, plan_id, currency LIMIT {int(limit)}"
        )
        names = self.base.plan_names({row[0] for row in rows}) if rows else {}
        return [PlanRevenue(plan_id, names.get(plan_id), currency, int(revenue), int(n)) for plan_id, currency, revenue, n in rows]

    def plan_rows_by_day(self, days: DayRange) -> list[tuple]:
        rows = self.client.rows(
            f"SELECT {self._day()} AS day, plan_id, currency, count(), sum(amount_minor_units) FROM {self._paid(days)} "
            "GROUP BY day, plan_id, currency ORDER BY day, plan_id, currency"
        )
        return [(day, plan_id, currency, int(n), int(amount)) for day, plan_id, currency, n, amount in rows]

    def forecast_series_by_day(self, start: dt.date, end: dt.date, currency: str) -> dict[dt.date, tuple[int, int, int]]:
        return forecast_series(self.rows_by_day(DayRange(start, end), [SIGNUP, PAID]), currency)

    def first_event_day(self) -> dt.date | None:
        condition = f"user_id NOT IN {literal(sorted(self.excluded))}" if self.excluded else "1"
        rows = self.client.rows(f"SELECT count(), min({self._day()}) FROM {self.base.table} FINAL WHERE {condition}")
        count, first = rows[0]
        return first if count else None
