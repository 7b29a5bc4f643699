"""Shipping `analytics_events` (the outbox) to ClickHouse, exactly once as the reports see it.

Tables in ClickHouse (database of `CLICKHOUSE_URL`):
- `analytics_events`: the events, `ReplacingMergeTree(version)` ordered by
  `(event_type, occurred_at, id)` and partitioned by month. An event never changes, so
  a row shipped twice has the same sorting key and merges away; everything that counts
  rows reads with `FINAL`, so a duplicate not merged yet is never counted. `occurred_at`
  is whole seconds, `occurred_at_us` the microseconds (the funnel's gaps need them).
- the rollups the reports read (`app.services.warehouse_rollups`): counts and revenue
  per day and per month, recomputed for the days of every shipped batch, and the exact
  user sets per day and per month. With `CLICKHOUSE_CLUSTER` the rows live in `analytics_events_local` on every shard and `analytics_events` is a
  `Distributed` table sharded by `cityHash64(user_id)`: one user's events share a shard
  (a per-user funnel can be computed shard by shard) and a re-shipped row lands on the
  shard that holds its first copy, where `FINAL` collapses it.
- `warehouse_sync`: the shipping cursor (last shipped id, when a pass last caught up).
  It lives in ClickHouse, next to the data it describes: a wiped or new warehouse has no
  cursor and is filled from the start, whereas a cursor kept in the shop's database
  would claim rows the warehouse no longer has. It also keeps the shipper from writing
  to the shop's database at all, so it never holds a lock the shop's flows wait for.

Ids are assigned at insert but commit in any order, so a pass re-reads a trailing window
of `trail_ids` ids below the cursor and ships only the ids ClickHouse lacks. A pass can
be killed anywhere: the cursor moves only after a batch is in, and the next pass checks
the ids at and after the cursor before inserting.
"""

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import DateTime, Text, cast, func, select, type_coerce
from sqlalchemy.engine import Connection

from app.db import utc_now
from app.models.analytics import AnalyticsEvent
from app.services import warehouse_rollups as rollups
from app.services.clickhouse_client import ClickHouse, NativeClient, literal

EVENTS = "analytics_events"
LOCAL_EVENTS = "analytics_events_local"
CURSOR = "warehouse_sync"
SHARDING_KEY = "cityHash64(user_id)"
# 0 and '' stand for NULL: Nullable columns cost a mask per value, and no id is 0.
# occurred_at_us: the microseconds DateTime drops (18.16 has no DateTime64); the funnel's
# gaps, ties and window edges need them to equal the shop's own answer.
EVENT_TABLE_COLUMNS = """
    id UInt64,
    event_type String,
    user_id UInt64,
    order_id UInt64,
    plan_id UInt64,
    amount_minor_units Int64,
    currency String,
    metadata String,
    occurred_at DateTime('UTC'),
    occurred_at_us UInt32,
    created_at DateTime('UTC'),
    version UInt64
"""
# Added after the first release: tables made before get them by ALTER (18.16 has no ADD COLUMN IF NOT EXISTS).
# Rows shipped before have 0 there; `warehouse sync --from-scratch` ships them again with theirs.
ADDED_EVENT_COLUMNS = {"occurred_at_us": "UInt32 AFTER occurred_at"}
MERGE_TREE = "ReplacingMergeTree(version) PARTITION BY toYYYYMM(occurred_at) ORDER BY (event_type, occurred_at, id)"
FIRST_BITMAP_RELEASE = (20, 1)  # groupBitmap came in 19.x; every release from 20.1 has it
NAIVE_EPOCH, ONE_SECOND = dt.datetime(1970, 1, 1), dt.timedelta(seconds=1)
DEFAULT_BATCH = 20_000
DEFAULT_TRAIL_IDS = 2_000


@dataclass(frozen=True)
class Cursor:
    last_id: int
    caught_up_at: dt.datetime | None
    shipped_total: int


@dataclass(frozen=True)
class SyncResult:
    shipped: int
    skipped_duplicates: int
    last_id: int
    caught_up_at: dt.datetime


@dataclass(frozen=True)
class Status:
    warehouse_rows: int
    source_rows: int
    source_max_id: int
    last_id: int
    caught_up_at: dt.datetime | None
    lag_events: int
    lag_seconds: float | None


class Warehouse:
    """The ClickHouse side of the analytics: schema, shipping cursor and the table the reports read."""

    def __init__(self, client: ClickHouse, cluster: str = "") -> None:
        self.client = client
        self.cluster = cluster
        self.db = client.database
        self._user_set_function: str | None = None

    @property
    def events(self) -> str:
        return f"{self.db}.{EVENTS}"

    # --- schema ---------------------------------------------------------------------

    def init(self) -> list[str]:
        """Create the tables if missing (on every shard with a cluster); returns the hosts touched."""
        if not self.cluster:
            self.client.command(f"CREATE DATABASE IF NOT EXISTS {self.db}")
            self._create_events(self.client, EVENTS)
            for name in rollups.ALL:
                self.client.command(rollups.create_statement(self.db, name, name, self.user_set_function))
            self._create_cursor()
            return ["local"]
        touched = []
        for node in self._cluster_nodes():
            # ON CLUSTER needs ZooKeeper/Keeper for its DDL queue; creating the same
            # tables on each node directly needs neither and is just as idempotent.
            node.command(f"CREATE DATABASE IF NOT EXISTS {self.db}")
            self._create_events(node, LOCAL_EVENTS)
            node.command(
                f"CREATE TABLE IF NOT EXISTS {self.db}.{EVENTS} AS {self.db}.{LOCAL_EVENTS} "
                f"ENGINE = Distributed({self.cluster}, {self.db}, {LOCAL_EVENTS}, {SHARDING_KEY})"
            )
            self._add_new_columns(node, EVENTS)
            for name in rollups.ALL:
                node.command(rollups.create_statement(self.db, name, rollups.local(name), self.user_set_function))
                node.command(
                    f"CREATE TABLE IF NOT EXISTS {self.db}.{name} AS {self.db}.{rollups.local(name)} "
                    f"ENGINE = Distributed({self.cluster}, {self.db}, {rollups.local(name)}, rand())"
                )
            touched.append(f"{node.target.host}:{node.target.port}")
        self._create_cursor()
        return touched

    def _create_events(self, client: ClickHouse, name: str) -> None:
        client.command(f"CREATE TABLE IF NOT EXISTS {self.db}.{name} ({EVENT_TABLE_COLUMNS}) ENGINE = {MERGE_TREE}")
        self._add_new_columns(client, name)

    def _add_new_columns(self, client: ClickHouse, name: str) -> None:
        present = {row[0] for row in client.rows(
            f"SELECT name FROM system.columns WHERE database = {literal(self.db)} AND table = {literal(name)}"
        )}
        for column, definition in ADDED_EVENT_COLUMNS.items():
            if column not in present:
                client.command(f"ALTER TABLE {self.db}.{name} ADD COLUMN {column} {definition}")

    def rollup(self, name: str) -> str:
        """The qualified name of a rollup of `app.services.warehouse_rollups` (what the reports read)."""
        return f"{self.db}.{name}"

    @property
    def daily(self) -> str:
        return self.rollup(rollups.DAILY)

    @property
    def user_set_function(self) -> str:
        """`groupBitmap` or, before ClickHouse 20.1, `uniqExact`: the aggregate behind the user sets."""
        if self._user_set_function is None:
            # The table's own type first: tables made before an upgrade keep their kind of set.
            existing = self.client.rows(
                f"SELECT type FROM system.columns WHERE database = {literal(self.db)} AND table = {literal(rollups.DAILY_USERS)} "
                "AND name = 'users'"
            )
            if existing:
                self._user_set_function = existing[0][0].removeprefix("AggregateFunction(").split(",")[0]
            else:
                release = tuple(int(part) for part in self.client.rows("SELECT version()")[0][0].split(".")[:2])
                self._user_set_function = "groupBitmap" if release >= FIRST_BITMAP_RELEASE else "uniqExact"
        return self._user_set_function

    def refresh_daily(self, days: set[dt.date] | None = None) -> None:
        """Recompute the rollups of `days` (None: every day) and their months from the events, on every shard."""
        if days is not None and not days:
            return
        if self.cluster:
            nodes = [(node, LOCAL_EVENTS, {name: rollups.local(name) for name in rollups.ALL}) for node in self._cluster_nodes()]
        else:
            nodes = [(self.client, EVENTS, {name: name for name in rollups.ALL})]
        version = time.time_ns()
        for shard, (node, events, tables) in enumerate(nodes):
            # Each shard rolls up its own events: a user's events, and every copy of a row, live on one shard.
            for statement in rollups.refresh_statements(self.db, events, tables, shard, days, version, self.user_set_function):
                node.command(statement)

    def _create_cursor(self) -> None:
        self.client.command(
            f"CREATE TABLE IF NOT EXISTS {self.db}.{CURSOR} (name String, last_id UInt64, caught_up_at DateTime('UTC'), "
            "shipped_total UInt64, version UInt64) ENGINE = ReplacingMergeTree(version) ORDER BY name"
        )

    def _cluster_nodes(self) -> list[NativeClient]:
        if not isinstance(self.client, NativeClient):
            raise ValueError("CLICKHOUSE_CLUSTER needs a clickhouse:// server URL, not embedded chDB")
        hosts = self.client.rows(
            f"SELECT host_address, port FROM system.clusters WHERE cluster = {literal(self.cluster)} ORDER BY shard_num, replica_num"
        )
        if not hosts:
            raise ValueError(f"CLICKHOUSE_CLUSTER {self.cluster!r} is not in the server's remote_servers")
        return [self.client.for_host(host, port) for host, port in hosts]

    def drop(self) -> None:
        """Drop the warehouse tables (and the cursor): `sync --from-scratch` refills them."""
        self._user_set_function = None
        nodes = self._cluster_nodes() if self.cluster else [self.client]
        for node in nodes:
            node.command(f"DROP TABLE IF EXISTS {self.db}.{EVENTS}")
            node.command(f"DROP TABLE IF EXISTS {self.db}.{LOCAL_EVENTS}")
            for name in rollups.ALL:
                node.command(f"DROP TABLE IF EXISTS {self.db}.{name}")
                node.command(f"DROP TABLE IF EXISTS {self.db}.{rollups.local(name)}")
        self.client.command(f"DROP TABLE IF EXISTS {self.db}.{CURSOR}")

    # --- cursor ---------------------------------------------------------------------

    def cursor(self) -> Cursor:
        rows = self.client.rows(
            f"SELECT last_id, caught_up_at, shipped_total FROM {self.db}.{CURSOR} WHERE name = 'events' "
            "ORDER BY version DESC LIMIT 1"
        )
        if not rows:
            return Cursor(0, None, 0)
        last_id, caught_up_at, total = rows[0]
        return Cursor(last_id, caught_up_at if caught_up_at.year > 1970 else None, total)

    def _save_cursor(self, cursor: Cursor) -> None:
        caught_up = cursor.caught_up_at or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        self.client.insert(
            CURSOR, ["name", "last_id", "caught_up_at", "shipped_total", "version"],
            [("events", cursor.last_id, caught_up, cursor.shipped_total, time.time_ns())],
        )

    # --- shipping -------------------------------------------------------------------

    def present_ids(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Which of these events' ids ClickHouse already holds (looked up by id and time range)."""
        ids, times = columns["id"], columns["occurred_at"]
        if not len(ids):
            return np.array([], dtype=np.uint64)
        found = self.client.rows(
            f"SELECT id FROM {self.events} WHERE id >= {int(ids.min())} AND id <= {int(ids.max())} "
            f"AND occurred_at >= {literal(_moment(times.min()))} AND occurred_at <= {literal(_moment(times.max()))}"
        )
        return np.array([row[0] for row in found], dtype=np.uint64)

    def sync(
        self,
        connection: Connection,
        *,
        batch_size: int = DEFAULT_BATCH,
        trail_ids: int = DEFAULT_TRAIL_IDS,
        progress: bool = False,
        now: Callable[[], dt.datetime] = utc_now,
        on_batch: Callable[[int], None] | None = None,
    ) -> SyncResult:
        """Ship every event not in ClickHouse yet, in batches by id; returns what was shipped."""
        started = now()
        cursor = self.cursor()
        source_max = connection.scalar(select(func.max(AnalyticsEvent.id))) or 0
        position = max(0, cursor.last_id - trail_ids)
        # Ids above the cursor may be in already when the last pass died after an
        # insert and before its cursor write: check them too, up to one batch.
        check_until = cursor.last_id + batch_size
        shipped = skipped = 0
        bar = _progress(progress, total=max(0, source_max - position))
        try:
            while True:
                rows = _read_batch(connection, position, batch_size)
                if not rows:
                    break
                batch = event_columns(rows, time.time_ns())
                new = batch
                if rows[0][0] <= check_until:
                    is_new = ~np.isin(batch["id"], self.present_ids(batch))
                    new = {name: values[is_new] for name, values in batch.items()}
                    skipped += len(rows) - int(is_new.sum())
                new_count = len(new["id"])
                if new_count:
                    self.client.insert_columns(EVENTS, new)
                # Every day of the batch, shipped now or before, and before the cursor moves: a
                # pass killed after its insert re-reads the batch and refreshes those days then.
                self.refresh_daily({_moment(day).date() for day in np.unique(batch["occurred_at"].astype("datetime64[D]"))})
                shipped += new_count
                position = rows[-1][0]
                cursor = Cursor(max(cursor.last_id, position), cursor.caught_up_at, cursor.shipped_total + new_count)
                self._save_cursor(cursor)
                if bar is not None:
                    bar.update(len(rows))
                if on_batch is not None:
                    on_batch(new_count)
        finally:
            if bar is not None:
                bar.close()
        cursor = Cursor(cursor.last_id, started, cursor.shipped_total)
        self._save_cursor(cursor)
        return SyncResult(shipped, skipped, cursor.last_id, started)

    def status(self, connection: Connection, *, now: Callable[[], dt.datetime] = utc_now) -> Status:
        """Rows on both sides, the cursor and the lag in events and seconds."""
        cursor = self.cursor()
        warehouse_rows = self.client.rows(f"SELECT count() FROM {self.events} FINAL")[0][0]
        e = AnalyticsEvent
        source_rows, source_max = connection.execute(select(func.count(), func.max(e.id))).one()
        lag_events = connection.scalar(select(func.count()).where(e.id > cursor.last_id)) or 0
        lag_seconds = (now() - cursor.caught_up_at).total_seconds() if cursor.caught_up_at else None
        return Status(warehouse_rows, source_rows, source_max or 0, cursor.last_id, cursor.caught_up_at, lag_events, lag_seconds)


def _read_batch(connection: Connection, after_id: int, limit: int) -> list[tuple]:
    e = AnalyticsEvent.__table__.c
    return list(
        connection.execute(
            # metadata as its stored JSON text: decoding and re-encoding it costs more than the rest of the row.
            # The times as the naive UTC they are stored as: making each one aware costs more than reading it.
            select(e.id, e.event_type, e.user_id, e.order_id, e.plan_id, e.amount_minor_units, e.currency,
                   cast(e.metadata, Text), type_coerce(e.occurred_at, DateTime()), type_coerce(e.created_at, DateTime()))
            .where(e.id > after_id)
            .order_by(e.id)
            .limit(limit)
        )
    )


def event_columns(rows: list[tuple], version: int) -> dict[str, np.ndarray]:
    """Rows read from the shop's events as the warehouse's columns (0 and '' for NULL)."""
    ids, types, users, orders, plans, amounts, currencies, metadata, occurred, created = zip(*rows, strict=True)
    return {
        "id": np.array(ids, dtype=np.uint64),
        "event_type": np.array(types, dtype=object),
        "user_id": _numbers(users, np.uint64),
        "order_id": _numbers(orders, np.uint64),
        "plan_id": _numbers(plans, np.uint64),
        "amount_minor_units": _numbers(amounts, np.int64),
        "currency": np.array([c or "" for c in currencies], dtype=object),
        "metadata": np.array([m or "{}" for m in metadata], dtype=object),
        "occurred_at": _seconds(occurred),
        "occurred_at_us": np.array([m.microsecond for m in occurred], dtype=np.uint32),
        "created_at": _seconds(created),
        "version": np.full(len(ids), version, dtype=np.uint64),
    }


def _numbers(values: tuple, dtype) -> np.ndarray:
    return np.array([v or 0 for v in values], dtype=dtype)


def _seconds(moments: tuple) -> np.ndarray:
    """Naive UTC datetimes as whole seconds since the epoch: ClickHouse's DateTime keeps no fraction."""
    return np.array([(m - NAIVE_EPOCH) // ONE_SECOND for m in moments], dtype=np.int64).astype("datetime64[s]")


def _moment(value: np.datetime64) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(value.astype("datetime64[s]").astype(np.int64)), dt.UTC)


def _progress(enabled: bool, total: int):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="ev", unit_scale=True, desc="shipping events")


def open_warehouse(settings) -> Warehouse:
    """The warehouse of `CLICKHOUSE_URL` / `CLICKHOUSE_CLUSTER`."""
    from app.services.clickhouse_client import connect

    return Warehouse(connect(settings.clickhouse_url), settings.clickhouse_cluster)
