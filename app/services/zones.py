"""IANA time zones: local calendar days as UTC instants (DST days are 23 or 25 hours long)."""

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.errors import InvalidInput
from app.services.dates import next_month  # noqa: F401  (re-exported for the funnel's month rows)


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The zone of an IANA name; 422 naming `tz` when it is unknown."""
    try:
        if not name or len(name) > 64:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"tz: {name!r} is not an IANA time zone (e.g. Europe/Berlin, UTC)") from None


def local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """00:00 of a local day as an aware UTC instant (zoneinfo resolves gaps and folds)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)


def day_span(start: dt.date, end: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """[start 00:00, the day after end 00:00) of local days, as UTC instants."""
    return local_midnight(start, tz), local_midnight(end + dt.timedelta(days=1), tz)


def local_day(moment: dt.datetime, tz: ZoneInfo) -> dt.date:
    return moment.astimezone(tz).date()


def week_start(day: dt.date) -> dt.date:
    """The Monday of the ISO week holding `day`."""
    return day - dt.timedelta(days=day.weekday())


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def period_start(day: dt.date, interval: str) -> dt.date:
    return week_start(day) if interval == "week" else month_start(day)


def period_offset(cohort: dt.date, period: dt.date, interval: str) -> int:
    if interval == "week":
        return (period - cohort).days // 7
    return (period.year - cohort.year) * 12 + period.month - cohort.month


def add_periods(start: dt.date, n: int, interval: str) -> dt.date:
    if interval == "week":
        return start + dt.timedelta(days=7 * n)
    months = start.year * 12 + start.month - 1 + n
    return dt.date(months // 12, months % 12 + 1, 1)
