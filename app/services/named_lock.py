"""One holder at a time across processes: a named lock in the shop's database.

MariaDB/MySQL `GET_LOCK`, PostgreSQL advisory locks, and on SQLite an exclusive `flock`
on a file beside the database. Each belongs to a connection (or an open file), so a
process that dies releases it. Used so that of several server workers only one ships
events to ClickHouse at a time (`warehouse_shipper`); the others skip their pass.
"""

import fcntl
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError


@contextmanager
def held(connection: Connection, name: str) -> Iterator[bool]:
    """True while this connection holds the lock `name`, False (at once) when another holder has it."""
    dialect = connection.dialect.name
    if dialect == "mysql":
        acquired = connection.scalar(text("SELECT GET_LOCK(:name, 0)"), {"name": name}) == 1
        try:
            yield acquired
        finally:
            if acquired:
                _release(connection, "SELECT RELEASE_LOCK(:name)", {"name": name})
    elif dialect == "postgresql":
        key = zlib.crc32(name.encode())  # a stable 32-bit key of the name
        acquired = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
        try:
            yield acquired
        finally:
            if acquired:
                _release(connection, "SELECT pg_advisory_unlock(:key)", {"key": key})
    else:
        with _file_lock(connection, name) as acquired:
            yield acquired


def _release(connection: Connection, statement: str, params: dict) -> None:
    # The holder's transaction may have failed (PostgreSQL refuses statements until it ends);
    # the lock is the session's, so ending the transaction keeps it. A lost connection took it along.
    try:
        connection.rollback()
        connection.execute(text(statement), params)
        connection.commit()
    except DBAPIError:
        connection.invalidate()


@contextmanager
def _file_lock(connection: Connection, name: str) -> Iterator[bool]:
    database = connection.engine.url.database
    if not database or database == ":memory:":
        yield True  # an in-memory database lives in one process
        return
    path = Path(f"{database}.{name}.lock")
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
