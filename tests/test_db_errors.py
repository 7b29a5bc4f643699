"""Database error classification (app/db.py): what is retried, what is a 503, what stays a bug."""

import sqlite3

import pymysql
import pytest
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from app.db import is_retryable, is_unavailable


def mysql(code: int, message: str, kind=pymysql.err.OperationalError) -> DBAPIError:
    return OperationalError("(test)", None, kind(code, message))


class FakePgError(Exception):
    """Carries a SQLSTATE the way psycopg's errors do (`.sqlstate`)."""

    def __init__(self, sqlstate: str):
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "retryable", "unavailable"),
    [
        (mysql(1213, "Deadlock found"), True, True),
        (mysql(1205, "Lock wait timeout exceeded"), True, True),
        (mysql(2006, "MySQL server has gone away"), False, True),
        (mysql(2013, "Lost connection to MySQL server during query"), False, True),
        (mysql(1040, "Too many connections"), False, True),
        (mysql(1054, "Unknown column 'x'", pymysql.err.OperationalError), False, False),
        (ProgrammingError("(test)", None, pymysql.err.ProgrammingError(1064, "syntax error")), False, False),
        (OperationalError("(test)", None, FakePgError("40P01")), True, True),
        (OperationalError("(test)", None, FakePgError("40001")), True, True),
        (OperationalError("(test)", None, FakePgError("08006")), False, True),
        (OperationalError("(test)", None, FakePgError("57P01")), False, True),
        (OperationalError("(test)", None, FakePgError("42703")), False, False),
        (OperationalError("(test)", None, sqlite3.OperationalError("database is locked")), False, True),
        (OperationalError("(test)", None, sqlite3.OperationalError("no such table: x")), False, False),
    ],
)
def test_classification(error, retryable, unavailable):
    assert is_retryable(error) is retryable
    assert is_unavailable(error) is unavailable


def test_an_invalidated_connection_is_unavailable():
    error = OperationalError("(test)", None, Exception("closed"), connection_invalidated=True)
    assert is_unavailable(error) and not is_retryable(error)
