"""The ClickHouse report engine: the `ReportEngine` questions answered from the shipped events.

Everything reads the rollups of `app.services.warehouse_rollups`, never the events: the
series and forecasts the days' current rows (latest version per key), totals and top plans
a range's whole months plus the days at its ends, unique users the union of the same
periods' exact user sets (roaring bitmaps, or exact hash sets on 18.16). Plan
names come from the shop's database (`plans` is a small table that the warehouse does
not copy). A funnel query fits here the same way: one method of the engine, written
with `windowFunnel` over the same table (one user's events share a shard, see
`app.services.warehouse`).
"""

import datetime as dt
from collections.abc import Callable, Iterable

from app.models.analytics import FUNNEL, EventType
from app.services import warehouse_rollups as rollups
from app.services.clickhouse_client import ClickHouse, literal
from app.services.dates import DayRange
from app.services.events_engine import add_up
from app.services.rollup_repo import DayRow, PlanRevenue, Totals
from app.services.warehouse import Warehouse

PAID = EventType.PAYMENT_SUCCEEDED.value
SIGNUP = EventType.USER_SIGNUP.value
PlanNames = Callable[[Iterable[int]], dict[int, str]]


class ClickHouseEngine:
    """Answers from ClickHouse (embedded chDB, one server or a sharded cluster)."""

    name = "clickhouse"

    def __init__(self, warehouse: Warehouse, plan_names: PlanNames) -> None:
        self.warehouse = warehouse
        self.client: ClickHouse = warehouse.client
        self.plan_names = plan_names
        self._fresh: dt.datetime | None = None
        # Per range, (plan id, currency) -> [revenue, payments] of its payments, read with its totals.
        self._plan_payments: dict[DayRange, dict[tuple[int, str], tuple[int, int]]] = {}

    @property
    def table(self) -> str:
        return self.warehouse.events

    @property
    def daily_table(self) -> str:
        return self.warehouse.daily

    def _rollup(self, start: dt.date, end: dt.date, where: str = "") -> str:
        """The daily counts' current rows for start..end (with `day`)."""
        condition = f"day >= {literal(start)} AND day <= {literal(end)}" + (f" AND {where}" if where else "")
        return rollups.current_counts(self.daily_table, "day", condition)

    def _range_rollup(self, days: DayRange, where: str = "") -> str:
        """The current count rows that sum to start..end: its whole months, and the days at its ends."""
        month_condition, day_condition = rollups.in_periods(*rollups.covering(days.start, days.end))
        extra = f" AND {where}" if where else ""
        columns = "event_type, currency, plan_id, event_count, revenue_minor_units"
        monthly = rollups.current_counts(self.warehouse.rollup(rollups.MONTHLY), "month", f"({month_condition}){extra}")
        daily = rollups.current_counts(self.daily_table, "day", f"({day_condition}){extra}")
        return f"(SELECT {columns} FROM {monthly} UNION ALL SELECT {columns} FROM {daily})"

    def fresh_as_of(self) -> dt.datetime | None:
        """When the shipper last caught up with the shop's events (None: it never has)."""
        if self._fresh is None:
            self._fresh = self.warehouse.cursor().caught_up_at
        return self._fresh

    def totals(self, days: DayRange) -> Totals:
        return self.totals_many([days])[0]

    def totals_many(self, ranges: list[DayRange]) -> list[Totals]:
        """Every range's totals from one query, which also keeps their payments per plan for `top_plans`
        (the overview asks for both: one round trip to ClickHouse instead of three)."""
        parts = " UNION ALL ".join(
            f"SELECT {i} AS range_index, event_type, currency, plan_id, event_count, revenue_minor_units "
            f"FROM {self._range_rollup(days)}"
            for i, days in enumerate(ranges)
        )
        rows = self.client.rows(
            f"SELECT range_index, event_type, currency, plan_id, sum(event_count), sum(revenue_minor_units) "
            f"FROM ({parts}) GROUP BY range_index, event_type, currency, plan_id"
        )
        by_range: dict[int, list[tuple]] = {i: [] for i in range(len(ranges))}
        for row in rows:
            by_range[row[0]].append(row[1:])
        result = []
        for i, days in enumerate(ranges):
            counts = {e.value: 0 for e in FUNNEL}
            revenue: dict[str, int] = {}
            payments: dict[str, int] = {}
            for event_type, currency, _, count, amount in by_range[i]:
                if event_type in counts:
                    counts[event_type] += count
                if event_type == PAID and currency:
                    revenue[currency] = revenue.get(currency, 0) + amount
                    payments[currency] = payments.get(currency, 0) + count
            self._plan_payments[days] = add_up(
                ((plan_id, currency), amount, count) for event_type, currency, plan_id, count, amount in by_range[i]
                if event_type == PAID and currency and plan_id
            )
            result.append(Totals(counts, dict(sorted(revenue.items())), payments=payments))
        return result

    def daily(self, days: DayRange, types: list[str]) -> list[DayRow]:
        needed = sorted({*types, PAID})
        # Currency only splits payments (the revenue): one row per day and type for the rest.
        rows = self.client.rows(
            f"SELECT day, event_type, if(event_type = {literal(PAID)}, currency, '') AS paid_in, sum(event_count), "
            f"sum(revenue_minor_units) FROM {self._rollup(days.start, days.end, f'event_type IN {literal(needed)}')} "
            "GROUP BY day, event_type, paid_in ORDER BY day"
        )
        by_day: dict[dt.date, DayRow] = {}
        for day, event_type, currency, count, amount in rows:
            row = by_day.get(day)
            if row is None:  # not setdefault: that would build a row for every result row
                row = by_day[day] = DayRow(day, dict.fromkeys(types, 0), {})
            if event_type in row.counts:
                row.counts[event_type] += count
            if event_type == PAID and currency:
                row.revenue[currency] = row.revenue.get(currency, 0) + amount
        return [DayRow(r.day, r.counts, dict(sorted(r.revenue.items()))) for r in by_day.values()]

    def unique_users(self, days: DayRange, types: list[str]) -> dict[str, int]:
        """Exact distinct users per type: the union of the user-set rollups; signups are counted,
        since each user has one (its dedupe key), so the largest set is never merged."""
        function = self.warehouse.user_set_function
        month_condition, day_condition = rollups.in_periods(*rollups.covering(days.start, days.end))
        merged = [t for t in types if t != SIGNUP]
        parts = []
        if merged:
            of_types = f"event_type IN {literal(merged)}"
            parts.append(
                f"SELECT event_type, toUInt64({function}Merge(users)) AS users FROM ("
                f"SELECT event_type, users FROM {self.warehouse.rollup(rollups.MONTHLY_USERS)} WHERE ({month_condition}) AND {of_types} "
                f"UNION ALL SELECT event_type, users FROM {self.warehouse.rollup(rollups.DAILY_USERS)} "
                f"WHERE ({day_condition}) AND {of_types}) GROUP BY event_type"
            )
        if SIGNUP in types:
            parts.append(
                f"SELECT event_type, toUInt64(sum(event_count)) AS users "
                f"FROM {self._range_rollup(days, f'event_type = {literal(SIGNUP)}')} GROUP BY event_type"
            )
        found = dict(self.client.rows(" UNION ALL ".join(parts))) if parts else {}
        return {t: found.get(t, 0) for t in types}

    def top_plans(self, days: DayRange, limit: int) -> list[PlanRevenue]:
        plans = self._plan_payments.get(days)
        if plans is None:
            self.totals_many([days])
            plans = self._plan_payments[days]
        # The SQL engine's order: revenue, then payments, descending; then plan id and currency.
        ranked = sorted(plans.items(), key=lambda item: (-item[1][0], -item[1][1], item[0][0], item[0][1]))[:limit]
        names = self.plan_names({plan_id for (plan_id, _), _ in ranked}) if ranked else {}
        return [PlanRevenue(plan_id, names.get(plan_id), currency, revenue, payments) for (plan_id, currency), (revenue, payments) in ranked]

    def forecast_series_by_day(self, start: dt.date, end: dt.date, currency: str) -> dict[dt.date, tuple[int, int, int]]:
        """(revenue in `currency`, signups, payments in `currency`) per day with any."""
        signup, paid, cur = literal(SIGNUP), literal(PAID), literal(currency)
        is_payment = f"event_type = {paid} AND currency = {cur}"
        rows = self.client.rows(
            f"SELECT day, sumIf(revenue_minor_units, {is_payment}), sumIf(event_count, event_type = {signup}), "
            f"sumIf(event_count, {is_payment}) "
            f"FROM {self._rollup(start, end, f'(event_type = {signup} OR ({is_payment}))')} "
            "GROUP BY day"
        )
        return {day: (int(revenue), int(signups), int(payments)) for day, revenue, signups, payments in rows}

    def first_event_day(self) -> dt.date | None:
        rows = self.client.rows(f"SELECT count(), min(day) FROM {self.daily_table} WHERE event_count > 0")
        count, first = rows[0]
        return first if count else None
