"""Per-process sums of the funnel rollups' month rows, kept while the month's version token stays.

Every change to the rollups' rows of a month (the catch-up's, a rebuild's) changes that month's
token in `analytics_funnel_month_versions`, in the same transaction (`funnel_store.bump_months`).
A reader reads the tokens of the months it needs (one small query), takes the kept sums of those
whose token it kept them under, and reads only the others; so an answer is exact whatever the
cache holds. Months with no token yet are read every time. Kept in memory only: GET requests
write nothing, and every process keeps its own (the first request after a start reads every month).
"""

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable, Hashable
from threading import Lock

from sqlalchemy import select

from app.models.funnel import FunnelMonthVersion

MAX_ENTRIES = 2_000  # a month's sums per (database, query shape): a few thousand counts each

_kept: OrderedDict[Hashable, tuple[int, object]] = OrderedDict()
_lock = Lock()


def versions(connection, months: list[dt.date]) -> dict[dt.date, int]:
    """The current tokens of these months (months without one are left out)."""
    if not months:
        return {}
    v = FunnelMonthVersion
    return dict(connection.execute(select(v.month, v.version).where(v.month.in_(sorted(months)))).all())


def month_sums(connection, shape: Hashable, months: list[dt.date], read: Callable[[list[dt.date]], dict[dt.date, object]],
               tokens: dict[dt.date, int] | None = None) -> dict[dt.date, object]:
    """Each month's sums: kept ones whose token is current, the rest from `read(months)` (one call), then kept."""
    tokens = versions(connection, months) if tokens is None else tokens
    database = _database(connection)
    found, missing = {}, []
    with _lock:
        for month in months:
            entry = _kept.get((database, shape, month))
            if entry is not None and month in tokens and entry[0] == tokens[month]:
                _kept.move_to_end((database, shape, month))
                found[month] = entry[1]
            else:
                missing.append(month)
    if missing:
        fresh = read(missing)
        with _lock:
            for month in missing:
                found[month] = fresh.get(month)
                if month in tokens:
                    _kept[(database, shape, month)] = (tokens[month], found[month])
            while len(_kept) > MAX_ENTRIES:
                _kept.popitem(last=False)
    return found


def combined(connection, shape: Hashable, months: list[dt.date], read: Callable[[list[dt.date]], dict[dt.date, object]],
             combine: Callable[[list[object]], object]) -> object:
    """`combine` of the months' sums, itself kept while every one of the months keeps its token (a dashboard
    asking the same range again adds nothing up). The result is shared: callers copy before changing it."""
    tokens = versions(connection, months)
    key = (_database(connection), shape, tuple(months))
    stamp = tuple(tokens.get(month) for month in months)
    with _lock:
        entry = _kept.get(key)
    if entry is not None and None not in stamp and entry[0] == stamp:
        return entry[1]
    result = combine(list(month_sums(connection, shape, months, read, tokens).values()))
    if None not in stamp:
        with _lock:
            _kept[key] = (stamp, result)
    return result


def _database(connection) -> str:
    return connection.engine.url.render_as_string(hide_password=True)


def clear() -> None:
    with _lock:
        _kept.clear()
