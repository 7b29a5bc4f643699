"""Calendar helpers shared by every report: whole-day ranges and month arithmetic."""

import datetime as dt
from dataclasses import dataclass

MAX_RANGE_DAYS = 365
INTERVALS = ("day", "week", "month")


@dataclass(frozen=True)
class DayRange:
    """Whole UTC days, both ends included."""

    start: dt.date
    end: dt.date
    clamped: bool = False

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "DayRange":
        end = self.start - dt.timedelta(days=1)
        return DayRange(end - dt.timedelta(days=self.days - 1), end)

    def each_day(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]

    @property
    def start_at(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), tzinfo=dt.UTC)

    @property
    def end_before(self) -> dt.datetime:
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


@dataclass(frozen=True)
class Period:
    """A day, ISO week or calendar month as far as a range holds it."""

    first_day: dt.date  # the period's own first day (the Monday, the 1st), even before the range
    start: dt.date  # its first day inside the range
    end: dt.date  # its last day inside the range
    partial: bool  # the range cuts it

    def each_day(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def periods(days: DayRange, interval: str) -> list[Period]:
    """The range's days grouped by `interval` (one of INTERVALS), in order."""
    found = []
    start = days.start
    while start <= days.end:
        if interval == "week":
            first, last = start - dt.timedelta(days=start.weekday()), start + dt.timedelta(days=6 - start.weekday())
        elif interval == "month":
            first, last = start.replace(day=1), month_end(start)
        else:
            first, last = start, start
        end = min(last, days.end)
        found.append(Period(first, start, end, partial=first < start or end < last))
        start = end + dt.timedelta(days=1)
    return found


def resolve_range(start: dt.date | None, end: dt.date | None, *, default_days: int, today: dt.date) -> DayRange:
    """Apply the defaults and the 365-day clamp; start after end is a ValueError."""
    end = end or (max(today, start) if start else today)
    start = start or end - dt.timedelta(days=default_days - 1)
    if start > end:
        raise ValueError("start_date is after end_date")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        return DayRange(end - dt.timedelta(days=MAX_RANGE_DAYS - 1), end, clamped=True)
    return DayRange(start, end)


def next_month(day: dt.date) -> dt.date:
    """The first day of the month after `day`'s."""
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def month_end(month: dt.date) -> dt.date:
    """The last day of `month`'s month."""
    return next_month(month) - dt.timedelta(days=1)


def is_month_end(day: dt.date) -> bool:
    return (day + dt.timedelta(days=1)).day == 1


def whole_months(start: dt.date, end: dt.date) -> list[dt.date]:
    """First days of the calendar months lying wholly inside start..end."""
    months = []
    month = start if start.day == 1 else next_month(start)
    while month_end(month) <= end:
        months.append(month)
        month = next_month(month)
    return months


def closed_months(start: dt.date, end: dt.date, today: dt.date) -> list[dt.date]:
    """Whole months inside start..end that ended before `today` (no new events expected)."""
    return [m for m in whole_months(start, end) if next_month(m) <= today]


def as_date(value) -> dt.date:
    """A DATE column's value as a date: SQLite returns aggregates over DATE columns as text."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
