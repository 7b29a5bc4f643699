"""One small ClickHouse client over embedded chDB or a server's native protocol.

`CLICKHOUSE_URL` picks it: `chdb:///path/to/dir` runs ClickHouse in this process on a
folder (development and tests); `clickhouse://user:pass@host:9000/db` talks the native
protocol through `clickhouse-driver` to a server or a cluster node. Both take the same
SQL text (literals are rendered here, see `literal`) and return rows as tuples of plain
Python values (int, str, date, aware UTC datetime), so the callers never branch on which
one answers. The SQL is kept to what Debian's ClickHouse 18.16 and current releases
both run.
"""

import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from app.errors import AppError

CHDB_DATABASE = "warehouse"


class WarehouseUnavailable(AppError):
    """ClickHouse cannot be reached or refused to answer: the reports answer 503."""

    status_code = 503


class WarehouseQueryError(Exception):
    """ClickHouse refused a statement (a missing table, or a bug; not an outage)."""


class ClickHouse(Protocol):
    database: str

    def rows(self, sql: str) -> list[tuple]:
        """Run a query and return its rows."""

    def command(self, sql: str) -> None:
        """Run a statement that returns nothing (DDL, OPTIMIZE)."""

    def insert(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        """Insert rows (tuples in `columns` order) into `table` of this database."""

    def insert_columns(self, table: str, columns: dict[str, Any]) -> None:
        """Insert whole columns: numpy arrays (strings as object or str arrays, times as datetime64[s]) or pyarrow arrays."""


def literal(value: Any) -> str:
    """A value as ClickHouse SQL text: the only way values enter a statement here."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        moment = value.astimezone(dt.UTC) if value.tzinfo else value
        return f"toDateTime('{moment:%Y-%m-%d %H:%M:%S}', 'UTC')"
    if isinstance(value, dt.date):
        return f"toDate('{value.isoformat()}')"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(literal(v) for v in value) + ")" if value else "(NULL)"
    raise TypeError(f"no ClickHouse literal for {type(value).__name__}")


def _utc(value: Any) -> Any:
    return value.replace(tzinfo=dt.UTC) if isinstance(value, dt.datetime) and value.tzinfo is None else value


def _converter(type_name: str) -> Callable[[Any], Any]:
    """How a JSONCompact value of this ClickHouse type becomes a Python value (chosen once per column)."""
    base = type_name.removeprefix("Nullable(").removeprefix("LowCardinality(")
    if base.startswith(("UInt", "Int")):
        convert = int
    elif base.startswith("Float"):
        convert = float
    elif base.startswith("DateTime"):
        def convert(value: str) -> dt.datetime:
            return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    elif base.startswith("Date"):
        convert = dt.date.fromisoformat
    else:
        return _same
    if not type_name.startswith(("Nullable(", "LowCardinality(Nullable(")):
        return convert
    return lambda value: None if value is None else convert(value)


def _same(value: Any) -> Any:
    return value


class ChdbClient:
    """ClickHouse inside this process (chDB) on a folder; one session per folder and process."""

    def __init__(self, path: str) -> None:
        from chdb import session

        Path(path).mkdir(parents=True, exist_ok=True)
        self.database = CHDB_DATABASE
        self.path = path
        try:
            self._session = session.Session(path)
        except Exception as exc:  # chDB raises plain RuntimeErrors, e.g. a folder another process holds
            raise WarehouseUnavailable(f"The embedded analytics warehouse (chDB at {path}) cannot be opened: {exc}") from exc
        # A chDB session is one embedded server; the lock keeps its calls one at a time.
        self._lock = threading.Lock()
        self.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")

    def _query(self, sql: str, fmt: str = "CSV"):
        try:
            with self._lock:
                return self._session.query(sql, fmt)
        except Exception as exc:  # chDB raises RuntimeError/ChdbError for a statement it refuses
            raise WarehouseQueryError(str(exc)) from exc

    def rows(self, sql: str) -> list[tuple]:
        result = self._query(sql, "JSONCompact").bytes()
        if not result:
            return []
        body = json.loads(result)
        if not body["data"]:
            return []
        # Column by column: one map() per column instead of a generator per row.
        columns = [
            values if convert is _same else list(map(convert, values))
            for convert, values in zip((_converter(column["type"]) for column in body["meta"]), zip(*body["data"]), strict=True)
        ]
        return list(zip(*columns))

    def command(self, sql: str) -> None:
        self._query(sql)

    def insert(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        if rows:
            self.insert_columns(table, {name: list(values) for name, values in zip(columns, zip(*rows), strict=True)})

    def insert_columns(self, table: str, columns: dict[str, Any]) -> None:
        """Insert whole columns: chDB reads them as one Arrow table, no text."""
        import pyarrow as pa

        arrow_rows = pa.table(  # noqa: F841 (read by Python())
            {name: values if isinstance(values, pa.Array) else pa.array(values) for name, values in columns.items()}
        )
        names = ", ".join(columns)
        self._query(f"INSERT INTO {self.database}.{table} ({names}) SELECT {names} FROM Python(arrow_rows)")

    def close(self) -> None:
        self._session.close()


@dataclass(frozen=True)
class NativeTarget:
    host: str
    port: int
    user: str
    password: str
    database: str
    secure: bool


class NativeClient:
    """A ClickHouse server over the native protocol (clickhouse-driver), one connection per thread."""

    def __init__(self, target: NativeTarget, *, connect_timeout: float = 2.0, timeout: float = 60.0) -> None:
        self.target = target
        self.database = target.database
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._local = threading.local()

    def for_host(self, host: str, port: int) -> "NativeClient":
        """The same credentials and database on another node (a shard of the cluster)."""
        other = NativeTarget(host, port, self.target.user, self.target.password, self.database, self.target.secure)
        return NativeClient(other, connect_timeout=self.connect_timeout, timeout=self.timeout)

    def _client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            from clickhouse_driver import Client

            t = self.target
            client = Client(
                # Statements name their database; the session's default must exist before `init` creates ours.
                host=t.host, port=t.port, user=t.user, password=t.password, database="default", secure=t.secure,
                connect_timeout=self.connect_timeout, send_receive_timeout=self.timeout,
                # Inserts through a Distributed table reach the shards before INSERT returns,
                # so the shipping cursor never runs ahead of what the shards hold.
                settings={"insert_distributed_sync": 1},
            )
            self._local.client = client
        return client

    def _execute(self, sql: str, params=None, **options):
        from clickhouse_driver import errors

        try:
            return self._client().execute(sql, params, **options) if params is not None else self._client().execute(sql)
        except (errors.NetworkError, errors.SocketTimeoutError, OSError, EOFError) as exc:
            self._reset()
            raise WarehouseUnavailable(
                f"The analytics warehouse (ClickHouse at {self.target.host}:{self.target.port}) is unreachable: {exc}"
            ) from exc
        except errors.ServerException as exc:
            raise WarehouseQueryError(str(exc)) from exc

    def _reset(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            client.disconnect()

    def rows(self, sql: str) -> list[tuple]:
        return [tuple(_utc(v) for v in row) for row in self._execute(sql)]

    def command(self, sql: str) -> None:
        self._execute(sql)

    def insert(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        if rows:
            self._execute(f"INSERT INTO {self.database}.{table} ({', '.join(columns)}) VALUES", rows)

    def insert_columns(self, table: str, columns: dict[str, Any]) -> None:
        """Insert whole columns in native blocks from numpy (clickhouse-driver's use_numpy): no Python row objects."""
        as_numpy = [_numpy_column(values) for values in columns.values()]
        if len(as_numpy[0]):
            self._execute(
                f"INSERT INTO {self.database}.{table} ({', '.join(columns)}) VALUES", as_numpy,
                columnar=True, settings={"use_numpy": True},
            )

    def close(self) -> None:
        self._reset()


def _numpy_column(values: Any):
    """A column as the numpy array clickhouse-driver writes: strings as objects, Arrow arrays converted."""
    import numpy as np
    import pyarrow as pa

    if isinstance(values, pa.DictionaryArray):
        # The dictionary's few strings, repeated by reference: no string per row is made.
        return values.dictionary.to_numpy(zero_copy_only=False)[values.indices.to_numpy(zero_copy_only=False)]
    if isinstance(values, pa.Array):
        values = values.to_numpy(zero_copy_only=False)
    values = np.asarray(values)
    return values.astype(object) if values.dtype.kind == "U" else values


def parse_native_url(url: str) -> NativeTarget:
    """clickhouse://user:pass@host:9000/db (clickhouses:// or ?secure=1 for TLS)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    secure = parts.scheme == "clickhouses" or query.get("secure", ["0"])[0] in ("1", "true")
    return NativeTarget(
        host=parts.hostname or "localhost",
        port=parts.port or (9440 if secure else 9000),
        user=unquote(parts.username or "default"),
        password=unquote(parts.password or ""),
        database=(parts.path.strip("/") or "default"),
        secure=secure,
    )


_clients: dict[str, ClickHouse] = {}
_clients_lock = threading.Lock()


def connect(url: str) -> ClickHouse:
    """The process-wide client for `url` (chDB allows one session per folder and process)."""
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = _open(url)
            _clients[url] = client
        return client


def _open(url: str) -> ClickHouse:
    if url.startswith("chdb://"):
        path = url.removeprefix("chdb://")
        if not path:
            raise ValueError("CLICKHOUSE_URL chdb:// needs a folder, e.g. chdb:///var/lib/shop/warehouse")
        return ChdbClient(path)
    if url.startswith(("clickhouse://", "clickhouses://")):
        return NativeClient(parse_native_url(url))
    raise ValueError(f"CLICKHOUSE_URL must start with chdb:// or clickhouse://, not {url.split(':', 1)[0]!r}")


def close_all() -> None:
    """Close every client (tests and shutdown)."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
