"""The engine seam under the reports: what a query engine must answer, and the SQL one.

`app.services.analytics` builds every response from these typed pieces, so another
engine (a warehouse) only has to answer the same questions with the same numbers.
The SQL engine answers from the rollup tables and the exact user bitmaps that the
shop's own database keeps in the business transaction.
"""

import datetime as dt
from typing import Protocol

from sqlalchemy.orm import Session

from app.services import rollup_repo, unique_users
from app.services.dates import DayRange
from app.services.rollup_repo import DayRow, PlanRevenue, Totals


class ReportEngine(Protocol):
    """The questions behind the admin analytics reports."""

    name: str

    def fresh_as_of(self) -> dt.datetime | None:
        """Up to when the engine's data is complete (None: always current)."""

    def totals(self, days: DayRange) -> Totals:
        """Events per funnel type and revenue per currency."""

    def totals_many(self, ranges: list[DayRange]) -> list[Totals]:
        """`totals` of each range (the SQL engine reads them in one round trip)."""

    def daily(self, days: DayRange, types: list[str]) -> list[DayRow]:
        """Per day with events: counts of `types`, revenue per currency."""

    def unique_users(self, days: DayRange, types: list[str]) -> dict[str, int]:
        """Exact distinct users per type."""

    def top_plans(self, days: DayRange, limit: int) -> list[PlanRevenue]:
        """(plan, currency) rows by revenue, then payments, then plan id."""

    def forecast_series_by_day(self, start: dt.date, end: dt.date, currency: str) -> dict[dt.date, tuple[int, int, int]]:
        """(revenue in `currency`, signups, payments in `currency`) per day with any."""

    def first_event_day(self) -> dt.date | None:
        """The UTC day of the earliest event."""


class SqlEngine:
    """Answers from the shop's own database (SQLite, MariaDB/MySQL or PostgreSQL)."""

    name = "sql"

    def __init__(self, session: Session, *, today: dt.date | None = None) -> None:
        self.session = session
        self.today = today

    def fresh_as_of(self) -> dt.datetime | None:
        return None

    def totals(self, days: DayRange) -> Totals:
        return rollup_repo.totals(self.session, days)

    def totals_many(self, ranges: list[DayRange]) -> list[Totals]:
        return rollup_repo.totals_many(self.session, ranges)

    def daily(self, days: DayRange, types: list[str]) -> list[DayRow]:
        return rollup_repo.daily(self.session, days, types)

    def unique_users(self, days: DayRange, types: list[str]) -> dict[str, int]:
        return unique_users.count_unique_users(self.session, days, types, today=self.today)

    def top_plans(self, days: DayRange, limit: int) -> list[PlanRevenue]:
        return rollup_repo.top_plans(self.session, days, limit)

    def forecast_series_by_day(self, start: dt.date, end: dt.date, currency: str) -> dict[dt.date, tuple[int, int, int]]:
        return rollup_repo.forecast_series_by_day(self.session, start, end, currency)

    def first_event_day(self) -> dt.date | None:
        return rollup_repo.first_event_day(self.session)
