"""Exact distinct users per event type over a range of days, from Roaring bitmaps.

Distinct counts do not add up across days, so the rollups cannot answer them. Each
(day, type) and each closed (month, type) has a cached bitmap of its user ids
(`AnalyticsDailyUserBitmap`, `AnalyticsMonthlyUserBitmap`); the distinct users of a
range are the size of the union of its months' and remaining days' bitmaps.

The cache is exact, never an estimate, and a GET never writes it:
- a cached bitmap is used only when the number of events it was built from equals the
  rollup's count for its day or month (the rollups are kept in the business
  transaction, and events are never deleted or moved, so equal counts mean equal sets);
- a day with newer events (today, typically) gets the events after the bitmap's
  `max_event_id` added in memory; if the counts still differ (an id committed out of
  order), or no bitmap exists, the day's users are read from the events;
- `refresh_bitmaps` writes missing or stale bitmaps: `python -m app refresh-bitmaps`,
  the demo loader, `rebuild-rollups`, and the server's background refresher call it.
`user_signup` needs no bitmap: one signup per user (its dedupe key), so its distinct
users are its event count.
Decoded bitmaps are kept in process memory by their `version`, which every write renews.
"""

import datetime as dt
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable

from pyroaring import BitMap
from sqlalchemy import Integer, delete, insert, literal, or_, select, tuple_, union_all
from sqlalchemy.orm import Session

from app.db import utc_now
from app.models.analytics import FUNNEL, AnalyticsDailyUserBitmap, AnalyticsEvent, AnalyticsMonthlyUserBitmap, EventType
from app.services import rollup_repo
from app.services.dates import DayRange, as_date, closed_months, month_end, next_month, whole_months

SIGNUP = EventType.USER_SIGNUP.value
BITMAP_TYPES = [e.value for e in FUNNEL if e != EventType.USER_SIGNUP]  # the funnel steps; money facts need none
# Bound for IN lists of (period, type) keys: well under every database's parameter limit.
KEYS_PER_QUERY = 500
# More runs of days than this (scattered keys) are looked up as (day, type) pairs.
MAX_SPANS = 8
CACHE_BYTES = 512 * 2**20

Key = tuple[dt.date, str]


class _DecodedCache:
    """Decoded bitmaps by version, least recently used dropped first, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.items: OrderedDict[str, tuple[BitMap, int]] = OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    def get(self, version: str) -> BitMap | None:
        with self.lock:
            item = self.items.get(version)
            if item is None:
                return None
            self.items.move_to_end(version)
            return item[0]

    def put(self, version: str, bitmap: BitMap, nbytes: int) -> None:
        with self.lock:
            if version in self.items:
                return
            self.items[version] = (bitmap, nbytes)
            self.size += nbytes
            while self.size > self.max_bytes and len(self.items) > 1:
                _, (_, dropped) = self.items.popitem(last=False)
                self.size -= dropped

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.size = 0


CACHE = _DecodedCache(CACHE_BYTES)


def count_unique_users(session: Session, days: DayRange, types: list[str], *, today: dt.date | None = None) -> dict[str, int]:
    """Exact distinct users per type over the range."""
    signups, sets = user_sets(session, days, types, today=today)
    return {t: signups if t == SIGNUP else len(sets[t]) for t in types}


def user_sets(
    session: Session, days: DayRange, types: list[str], *, today: dt.date | None = None
) -> tuple[int, dict[str, BitMap]]:
    """The range's signups (one per user; 0 unless `types` holds user_signup) and, per other type, the exact set of its users."""
    months = closed_months(days.start, days.end, today or utc_now().date())
    month_counts, day_counts = rollup_repo.counts_by_month_and_day(session, days.start, days.end, months, types)
    signups = sum(n for (_, t), n in [*month_counts.items(), *day_counts.items()] if t == SIGNUP)
    wanted = [t for t in types if t != SIGNUP]
    return signups, (_user_sets(session, wanted, month_counts, day_counts) if wanted else {})


def _user_sets(
    session: Session, types: list[str], month_counts: dict[Key, int], day_counts: dict[Key, int]
) -> dict[str, BitMap]:
    """Union of the valid month bitmaps and of the day sets of every day not covered by one."""
    parts: dict[str, list[BitMap]] = {t: [] for t in types}
    wanted_months = {key: n for key, n in month_counts.items() if key[1] in parts}
    needed = {key: n for key, n in day_counts.items() if key[1] in parts}
    # Both tables' metadata in one round trip: the usual overview needs nothing else from them.
    month_meta, day_meta = _stored_meta_pair(session, list(wanted_months), list(needed))
    covered = set()
    valid_months = {key: m for key, m in month_meta.items() if m[0] == wanted_months[key]}
    for (month, event_type), bitmap in _fetch(session, AnalyticsMonthlyUserBitmap, valid_months).items():
        parts[event_type].append(bitmap)
        covered.add((month, event_type))
    stale_months = [key for key in wanted_months if key not in covered]
    if stale_months:
        # A month whose bitmap is missing or stale is answered from its days.
        month_days = {}
        for month, event_type in stale_months:
            month_days.update(rollup_repo.counts_by_day(session, month, month_end(month), [event_type]))
        day_meta.update(_stored_meta(session, AnalyticsDailyUserBitmap, list(month_days)))
        needed.update(month_days)
    for (_, event_type), bitmap in day_sets(session, needed, meta=day_meta).items():
        parts[event_type].append(bitmap)
    return {t: BitMap.union(*parts[t]) if parts[t] else BitMap() for t in types}


def day_sets(
    session: Session, expected: dict[Key, int], *, meta: dict[Key, tuple[int, int, str]] | None = None
) -> dict[Key, BitMap]:
    """Each (day, type)'s user set: cached when its count matches, else completed or read from the events.

    `meta`: the stored bitmaps' metadata when the caller looked it up for every key of `expected`.
    """
    if meta is None:
        meta = _stored_meta(session, AnalyticsDailyUserBitmap, list(expected))
    result = _fetch(session, AnalyticsDailyUserBitmap, {key: m for key, m in meta.items() if m[0] == expected[key]})
    missing = {key: n for key, n in expected.items() if key not in result}
    if not missing:
        return result
    stale = {key: meta[key] for key in missing if key in meta}
    completed = _complete_with_newer_events(session, missing, stale)
    result.update(completed)
    to_read = [key for key in missing if key not in completed]
    for key, (bitmap, _, _) in _read_days(session, to_read).items():
        result[key] = bitmap
    return result


def refresh_bitmaps(session: Session, start: dt.date, end: dt.date, *, today: dt.date | None = None) -> int:
    """Write every missing or stale bitmap between two days; returns how many rows were written."""
    today = today or utc_now().date()
    counts = rollup_repo.counts_by_day(session, start, end, BITMAP_TYPES)
    stored = _stored_meta(session, AnalyticsDailyUserBitmap, list(counts))
    stale_days = [key for key, n in counts.items() if key not in stored or stored[key][0] != n]
    built = _read_days(session, stale_days)
    _store(session, AnalyticsDailyUserBitmap, built)
    months = closed_months(start, end, today)
    month_counts = _month_counts(counts, months)
    stored_months = _stored_meta(session, AnalyticsMonthlyUserBitmap, list(month_counts))
    stale_months = [key for key, n in month_counts.items() if key not in stored_months or stored_months[key][0] != n]
    built_months = {}
    for month, event_type in stale_months:
        day_keys = {key: n for key, n in counts.items() if key[1] == event_type and key[0].replace(day=1) == month}
        sets = day_sets(session, day_keys)
        meta = _stored_meta(session, AnalyticsDailyUserBitmap, list(day_keys))
        built_months[(month, event_type)] = (
            BitMap.union(*sets.values()),
            sum(meta[key][0] for key in day_keys),
            max(meta[key][1] for key in day_keys),
        )
    _store(session, AnalyticsMonthlyUserBitmap, built_months)
    return len(built) + len(built_months)


def rebuild_bitmaps(session: Session, start: dt.date, end: dt.date, *, today: dt.date | None = None) -> int:
    """Drop every stored bitmap and build them again from the events (after repairs)."""
    session.execute(delete(AnalyticsDailyUserBitmap))
    session.execute(delete(AnalyticsMonthlyUserBitmap))
    CACHE.clear()
    return refresh_bitmaps(session, start, end, today=today)


def warm(session: Session, *, today: dt.date | None = None, days: int = 400) -> int:
    """Decode the recent bitmaps into process memory (server start); returns how many."""
    today = today or utc_now().date()
    start = today - dt.timedelta(days=days)
    months = whole_months(start, today)
    month_keys = {(m, t): 0 for m in months for t in BITMAP_TYPES}
    loaded = _fetch(session, AnalyticsMonthlyUserBitmap, _stored_meta(session, AnalyticsMonthlyUserBitmap, list(month_keys)))
    day_keys = [(start + dt.timedelta(days=i), t) for i in range(days + 1) for t in BITMAP_TYPES]
    loaded.update(_fetch(session, AnalyticsDailyUserBitmap, _stored_meta(session, AnalyticsDailyUserBitmap, day_keys)))
    return len(loaded)


# --- the cache tables -----------------------------------------------------------------


def _period(table):
    return table.month if table is AnalyticsMonthlyUserBitmap else table.day


def _month_counts(counts: dict[Key, int], months: list[dt.date]) -> dict[Key, int]:
    wanted = set(months)
    totals: dict[Key, int] = {}
    for (day, event_type), n in counts.items():
        month = day.replace(day=1)
        if month in wanted:
            totals[(month, event_type)] = totals.get((month, event_type), 0) + n
    return totals


def _chunks(keys: list[Key]) -> Iterable[list[Key]]:
    for i in range(0, len(keys), KEYS_PER_QUERY):
        yield keys[i : i + KEYS_PER_QUERY]


def _key_filter(table, keys: list[Key]):
    return (tuple_(_period(table), table.event_type).in_(keys),)


def _spans(table, keys: list[Key]) -> list[tuple[dt.date, dt.date]]:
    """The keys' periods as runs of consecutive days (or months)."""
    following = next_month if table is AnalyticsMonthlyUserBitmap else (lambda day: day + dt.timedelta(days=1))
    runs: list[list[dt.date]] = []
    for period in sorted({period for period, _ in keys}):
        if runs and following(runs[-1][1]) == period:
            runs[-1][1] = period
        else:
            runs.append([period, period])
    return [(first, last) for first, last in runs]


def _meta_select(table, keys: list[Key], extra=()):
    """SELECTs of the stored metadata of `keys`: one by runs of days, or several by (day, type) pairs."""
    column = _period(table)
    columns = (column.label("period"), *extra, table.event_type, table.event_count, table.max_event_id, table.version)
    spans = _spans(table, keys)
    if len(spans) <= MAX_SPANS:
        # A range's keys are a few runs of days: ranges of the primary key, which cost less
        # to build and to run than a list of (day, type) pairs.
        types = sorted({event_type for _, event_type in keys})
        return [select(*columns).where(or_(*(column.between(first, last) for first, last in spans)), table.event_type.in_(types))]
    return [select(*columns).where(*_key_filter(table, chunk)) for chunk in _chunks(sorted(set(keys)))]


def _stored_meta(session: Session, table, keys: list[Key]) -> dict[Key, tuple[int, int, str]]:
    """(event_count, max_event_id, version) of the stored bitmaps among `keys`."""
    wanted = set(keys)
    if not wanted:
        return {}
    meta = {}
    for statement in _meta_select(table, list(wanted)):
        for period, event_type, n, max_id, version in session.connection().execute(statement):
            key = (as_date(period), event_type)
            if key in wanted:
                meta[key] = (int(n), int(max_id), version)
    return meta


def _stored_meta_pair(
    session: Session, month_keys: list[Key], day_keys: list[Key]
) -> tuple[dict[Key, tuple[int, int, str]], dict[Key, tuple[int, int, str]]]:
    """`_stored_meta` of month keys and of day keys, in one statement when both are a few runs."""
    monthly = _meta_select(AnalyticsMonthlyUserBitmap, month_keys, (literal(1, Integer).label("monthly"),)) if month_keys else []
    daily = _meta_select(AnalyticsDailyUserBitmap, day_keys, (literal(0, Integer).label("monthly"),)) if day_keys else []
    if len(monthly) != 1 or len(daily) != 1:
        return _stored_meta(session, AnalyticsMonthlyUserBitmap, month_keys), _stored_meta(session, AnalyticsDailyUserBitmap, day_keys)
    wanted = ({*month_keys}, {*day_keys})
    found: tuple[dict, dict] = ({}, {})
    for period, is_month, event_type, n, max_id, version in session.connection().execute(union_all(*monthly, *daily)):
        key = (as_date(period), event_type)
        side = 0 if is_month else 1
        if key in wanted[side]:
            found[side][key] = (int(n), int(max_id), version)
    return found


def _fetch(session: Session, table, meta: dict[Key, tuple[int, int, str]]) -> dict[Key, BitMap]:
    """The decoded bitmaps of these stored rows, from process memory or the database."""
    result = {}
    to_load = {}
    for key, (_, _, version) in meta.items():
        bitmap = CACHE.get(version)
        if bitmap is None:
            to_load[key] = version
        else:
            result[key] = bitmap
    for chunk in _chunks(sorted(to_load)):
        rows = session.connection().execute(
            select(_period(table), table.event_type, table.version, table.bitmap).where(*_key_filter(table, chunk))
        )
        for period, event_type, version, blob in rows:
            key = (as_date(period), event_type)
            if to_load.get(key) == version:
                bitmap = BitMap.deserialize(blob)
                CACHE.put(version, bitmap, len(blob))
                result[key] = bitmap
    return result


def _complete_with_newer_events(
    session: Session, expected: dict[Key, int], stale: dict[Key, tuple[int, int, str]]
) -> dict[Key, BitMap]:
    """Stale day bitmaps plus the events after their max id, where that accounts for every event."""
    behind = {key: m for key, m in stale.items() if m[0] < expected[key]}
    if not behind:
        return {}
    stored = _fetch(session, AnalyticsDailyUserBitmap, behind)
    e = AnalyticsEvent
    result = {}
    by_day: dict[dt.date, list[str]] = {}
    for day, event_type in stored:
        by_day.setdefault(day, []).append(event_type)
    for day, types in by_day.items():
        after = min(behind[(day, t)][1] for t in types)
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        rows = session.connection().execute(
            select(e.event_type, e.id, e.user_id).where(
                e.event_type.in_(types),
                e.occurred_at >= start,
                e.occurred_at < start + dt.timedelta(days=1),
                e.id > after,
            )
        ).all()
        for event_type in types:
            count, max_id, _ = behind[(day, event_type)]
            newer = [user_id for t, event_id, user_id in rows if t == event_type and event_id > max_id]
            if count + len(newer) == expected[(day, event_type)]:
                bitmap = stored[(day, event_type)].copy()
                bitmap.update(u for u in newer if u is not None)
                result[(day, event_type)] = bitmap
    return result


def _read_days(session: Session, keys: list[Key]) -> dict[Key, tuple[BitMap, int, int]]:
    """(users, events, max event id) per (day, type), read from the events: one query per run of days."""
    if not keys:
        return {}
    types_by_day: dict[dt.date, set[str]] = {}
    for day, event_type in keys:
        types_by_day.setdefault(day, set()).add(event_type)
    e = AnalyticsEvent
    collected: dict[Key, list[int]] = {key: [] for key in keys}
    counts = dict.fromkeys(keys, 0)
    max_ids = dict.fromkeys(keys, 0)
    for first, last in _runs(sorted(types_by_day)):
        types = sorted(set().union(*(types_by_day[first + dt.timedelta(days=i)] for i in range((last - first).days + 1)
                                     if first + dt.timedelta(days=i) in types_by_day)))
        start = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
        rows = session.connection().execute(
            select(e.event_type, e.occurred_at, e.id, e.user_id).where(
                e.event_type.in_(types),
                e.occurred_at >= start,
                e.occurred_at < dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC),
            )
        )
        for event_type, occurred_at, event_id, user_id in rows:
            key = (occurred_at.date(), event_type)
            if key not in counts:
                continue
            counts[key] += 1
            max_ids[key] = max(max_ids[key], event_id)
            if user_id is not None:
                collected[key].append(user_id)
    return {key: (BitMap(collected[key]), counts[key], max_ids[key]) for key in keys}


def _runs(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days grouped into (first, last) runs."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in days:
        if runs and day == runs[-1][1] + dt.timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _store(session: Session, table, built: dict[Key, tuple[BitMap, int, int]]) -> None:
    """Replace the stored bitmaps of these keys."""
    if not built:
        return
    period = _period(table)
    rows = []
    for (day, event_type), (bitmap, n, max_id) in sorted(built.items()):
        bitmap.run_optimize()
        rows.append({period.key: day, "event_type": event_type, "event_count": n, "max_event_id": max_id,
                     "version": secrets.token_hex(16), "bitmap": bitmap.serialize()})
    for chunk in _chunks(sorted(built)):
        session.execute(delete(table).where(tuple_(period, table.event_type).in_(chunk)))
    session.execute(insert(table), rows)
