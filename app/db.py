"""Engine, sessions, the declarative Base and the UTC datetime column type."""

import datetime as dt
from functools import lru_cache
from pathlib import Path

from sqlalchemy import JSON, DateTime, MetaData, create_engine, event
from sqlalchemy.dialects.mysql import JSON as MySQLJSON
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from app.config import get_settings

# MySQL error numbers after which the whole transaction is worth running again.
MYSQL_RETRYABLE_ERRORS = {1213, 1205}  # deadlock, lock wait timeout
# PostgreSQL SQLSTATEs of the same kind: serialization failure, deadlock detected.
POSTGRES_RETRYABLE_STATES = {"40001", "40P01"}
# MySQL client/server errors that mean "the server is not there or too busy right now":
# can't connect (2002, 2003), gone away (2006), lost during query (2013), too many connections (1040).
MYSQL_UNAVAILABLE_ERRORS = {2002, 2003, 2006, 2013, 1040}
# PostgreSQL: connection exceptions (class 08), too many connections, admin/crash shutdown, cannot connect now.
POSTGRES_UNAVAILABLE_STATES = {"53300", "57P01", "57P02", "57P03"}

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """Stores naive UTC (MySQL ignores timezone=True) and returns aware UTC datetimes."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)

    def load_dialect_impl(self, dialect):
        if dialect.name == "mysql":
            # Microsecond precision; MySQL's default DATETIME drops fractions.
            from sqlalchemy.dialects.mysql import DATETIME

            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=False))


# MySQL's JSON type, everywhere else the generic one.
JSONType = JSON().with_variant(MySQLJSON(), "mysql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def build_engine(url: str) -> Engine:
    parsed = make_url(url)
    kwargs: dict = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    elif parsed.get_backend_name() == "mysql":
        kwargs["isolation_level"] = "READ COMMITTED"
        kwargs["pool_recycle"] = 3600
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    # Let SQLAlchemy emit BEGIN itself, so SAVEPOINTs and isolation work as documented.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_on_begin(connection) -> None:
    # IMMEDIATE takes the write lock up front: two writers queue instead of
    # failing with "database is locked" when both try to upgrade a read lock.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@lru_cache
def get_engine() -> Engine:
    return build_engine(get_settings().database_url)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)



def is_retryable(exc: BaseException) -> bool:
    """True for a MySQL deadlock / lock timeout or a PostgreSQL serialization failure or deadlock."""
    orig = getattr(exc, "orig", None)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in MYSQL_RETRYABLE_ERRORS:
        return True
    return getattr(orig, "sqlstate", None) in POSTGRES_RETRYABLE_STATES


def is_unavailable(exc: BaseException) -> bool:
    """True when the database cannot answer now (down, connection lost, overloaded, locked):
    worth a 503 and a retry later, unlike an error in the statement itself."""
    if getattr(exc, "connection_invalidated", False):
        return True
    orig = getattr(exc, "orig", None)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in MYSQL_UNAVAILABLE_ERRORS | MYSQL_RETRYABLE_ERRORS:
        return True
    sqlstate = getattr(orig, "sqlstate", None) or ""
    if sqlstate.startswith("08") or sqlstate in POSTGRES_UNAVAILABLE_STATES | POSTGRES_RETRYABLE_STATES:
        return True
    # SQLite: another process holds the write lock past busy_timeout, or the file cannot be opened.
    message = str(orig or exc).lower()
    return type(orig).__module__.startswith("sqlite3") and ("locked" in message or "unable to open" in message)
