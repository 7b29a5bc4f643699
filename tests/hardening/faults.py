"""Database fault injection for tests: real DBAPI errors raised at a chosen statement or at commit.

The errors are what SQLAlchemy raises for a real failure: `sqlalchemy.exc.OperationalError`
wrapping the driver's own exception, e.g. PyMySQL's `OperationalError(1213, 'Deadlock found …')`,
so the app's handling (`is_retryable`, the retry middleware, the 503) sees exactly what a
failing MariaDB would give it.
"""

from contextlib import contextmanager
from dataclasses import dataclass, field

import pymysql
from sqlalchemy import MetaData, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from app.db import build_engine


def deadlock() -> OperationalError:
    return OperationalError(
        "(injected)", None, pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction")
    )


def lost_connection() -> OperationalError:
    return OperationalError("(injected)", None, pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"))


@dataclass
class FaultInjector:
    """Counts the statements the app runs and fails the `fail_at`-th one (1-based), or the commit."""

    make_error: object = lost_connection
    fail_at: int | None = None
    fail_commit: bool = False
    times: int = 1  # how many failures to inject in all (a retried request runs its statements again)
    statements: list[str] = field(default_factory=list)
    injected: list[str] = field(default_factory=list)

    def before_cursor_execute(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)
        if self.fail_at == len(self.statements) and len(self.injected) < self.times:
            self.injected.append(statement)
            raise self.make_error()

    def on_commit(self, conn):
        if self.fail_commit and len(self.injected) < self.times:
            self.injected.append("COMMIT")
            raise self.make_error()


@contextmanager
def inject(engine: Engine, injector: FaultInjector):
    """Arm `injector` on `engine` for the duration of the block."""
    event.listen(engine, "before_cursor_execute", injector.before_cursor_execute)
    event.listen(engine, "commit", injector.on_commit)
    try:
        yield injector
    finally:
        event.remove(engine, "before_cursor_execute", injector.before_cursor_execute)
        event.remove(engine, "commit", injector.on_commit)


class Snapshot:
    """Every row of every table, read over a separate engine (a fresh connection, not the app's pool)."""

    def __init__(self, url: str):
        self.engine = build_engine(url)
        self.meta = MetaData()
        self.meta.reflect(self.engine)

    def take(self) -> dict[str, list[tuple]]:
        with self.engine.connect() as conn:
            return {
                name: sorted((tuple(map(repr, row)) for row in conn.execute(select(table))), key=repr)
                for name, table in sorted(self.meta.tables.items())
                if name != "alembic_version"
            }

    def close(self) -> None:
        self.engine.dispose()
