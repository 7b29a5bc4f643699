"""The few places where SQLite, MySQL/MariaDB and PostgreSQL need different SQL."""

from functools import lru_cache

from sqlalchemy import Date, Interval, bindparam, cast, func, literal_column
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement


def day_of(session: Session, column: ColumnElement) -> ColumnElement:
    """The UTC calendar day of a naive-UTC datetime column."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(column, Date)
    return func.date(column)


def shifted_day_of(session: Session, column: ColumnElement, seconds: int) -> ColumnElement:
    """The calendar day of a naive-UTC datetime column moved by `seconds` (a zone's UTC offset)."""
    seconds = int(seconds)
    if not seconds:
        return day_of(session, column)
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return cast(column + literal_column(f"INTERVAL '{seconds} seconds'", type_=Interval), Date)
    if name == "mysql":
        return func.date(func.date_add(column, literal_column(f"INTERVAL {seconds} SECOND")))
    return func.date(column, literal_column(f"'{seconds:+d} seconds'"))


def add_counts(session: Session, table, keys: dict, increments: dict) -> None:
    """INSERT the row, or add `increments` to it when its key already exists."""
    stmt = _upsert(session.get_bind().dialect.name, table, tuple(keys), tuple(increments))
    session.execute(stmt, {**keys, **increments})


def add_counts_many(session: Session, table, key_names: tuple[str, ...], increment_names: tuple[str, ...], rows: list[dict]) -> None:
    """`add_counts` for many rows in one executemany (keys must be distinct within `rows`)."""
    if rows:
        session.execute(_upsert(session.get_bind().dialect.name, table, key_names, increment_names), rows)


@lru_cache(maxsize=64)
def _upsert(name: str, table, keys: tuple[str, ...], increments: tuple[str, ...]):
    # Built once per table and shape: record_event runs this on every event, and
    # building the statement cost more than executing it.
    values = {col: bindparam(col, type_=table.c[col].type) for col in (*keys, *increments)}
    if name == "mysql":
        stmt = mysql.insert(table).values(values)
        return stmt.on_duplicate_key_update({col: table.c[col] + stmt.inserted[col] for col in increments})
    dialect_module = sqlite if name == "sqlite" else postgresql
    stmt = dialect_module.insert(table).values(values)
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={col: table.c[col] + stmt.excluded[col] for col in increments},
    )
