"""Bench databases: create, migrate and fill them with generated demo activity (once per size)."""

import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from app.db import Base, build_engine, utc_now
from app.demo import bulk_load, delete_all, generate
from app.demo import rows as demo_rows
from app.demo.generate import CHECKOUT, EVENT_TYPES, PAID, PAYMENT_FAILED, REFUNDED, SIGNUP, DemoData
from app.models.analytics import AnalyticsEvent
from app.services.unique_users import rebuild_bitmaps as _rebuild_bitmaps
from app.services.unique_users import refresh_bitmaps

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "var" / "bench"
DAYS = 730
EVENTS_PER_USER = 2.47  # what the demo funnel yields, so --users follows from the size asked


def default_mysql_url(database: str) -> str:
    """MariaDB through mysqlclient (C) when it is installed (the `mysqlclient` extra), else PyMySQL."""
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        return f"mysql+pymysql://root@127.0.0.1:3306/{database}"
    return f"mysql+mysqldb://root@127.0.0.1:3306/{database}"


def database_url(kind: str, size_name: str, mysql_url: str, postgres_url: str) -> str:
    """One database per engine and size, so a size is loaded once and re-measured at will."""
    if kind == "sqlite":
        return f"sqlite:///{BENCH_DIR / f'bench_{size_name}.db'}"
    base = mysql_url if kind == "mysql" else postgres_url
    return make_url(base).set(database=f"{make_url(base).database}_{size_name}").render_as_string(hide_password=False)


def ensure_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        return
    server = parsed.set(database="mysql" if parsed.get_backend_name() == "mysql" else "postgres")
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if parsed.get_backend_name() == "mysql":
            conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {parsed.database}")
        elif not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": parsed.database}):
            conn.exec_driver_sql(f'CREATE DATABASE "{parsed.database}"')
    engine.dispose()


def migrate(url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


def marker_path(url: str) -> Path:
    parsed = make_url(url)
    # The same database through another driver (PyMySQL or mysqlclient) is the same load.
    name = parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=True)
    safe = name.replace("/", "_").replace(":", "_").replace("*", "")
    return BENCH_DIR / f"{safe}.json"


def rebuild_bitmaps(engine: Engine, info: dict) -> float:
    """Drop the cached user bitmaps and build them again; returns seconds."""
    began = time.perf_counter()
    now = dt.datetime.fromisoformat(info["now"])
    with Session(engine) as session, session.begin():
        _rebuild_bitmaps(session, now.date() - dt.timedelta(days=DAYS - 1), now.date(), today=now.date())
    return time.perf_counter() - began


def prepare(url: str, *, events: int, seed: int, reuse: bool, log) -> tuple[Engine, dict]:
    """The bench database with ~`events` events ending now; reloaded unless today's identical load is there."""
    ensure_database(url)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    now = utc_now().replace(microsecond=0)
    wanted = {"events": events, "seed": seed, "days": DAYS, "day": now.date().isoformat()}
    marker = marker_path(url)
    migrate(url)  # a reused database gets the newer revisions (their upgrades carry the data)
    engine = build_engine(url)
    if reuse and marker.exists():
        info = json.loads(marker.read_text())
        with Session(engine) as session:
            stored = session.scalar(select(func.count()).select_from(AnalyticsEvent))
        if {k: info.get(k) for k in wanted} == wanted and stored == info["loaded_events"]:
            log(f"  reusing {make_url(url).render_as_string()} ({stored:,} events)")
            return engine, info
    data = generate(days=DAYS, users=int(events / EVENTS_PER_USER), seed=seed, now=now)
    began = time.perf_counter()
    with Session(engine) as session, session.begin():
        _empty(session)
        if session.get_bind().dialect.name == "mysql":
            # MySQL's bulk-load advice: with 10M rows the secondary indexes outgrow the
            # buffer pool, and unique checks would read an index page per row.
            session.execute(text("SET SESSION unique_checks = 0, foreign_key_checks = 0"))
        bulk_load(session, data)
    load_seconds = time.perf_counter() - began
    began = time.perf_counter()
    with Session(engine) as session, session.begin():
        refresh_bitmaps(session, data.start.date(), now.date(), today=now.date())
    bitmap_seconds = time.perf_counter() - began
    info = {**wanted, "loaded_events": data.event_count, "load_seconds": round(load_seconds, 1),
            "bitmap_seconds": round(bitmap_seconds, 1), "now": now.isoformat()}
    marker.write_text(json.dumps(info))
    log(f"  loaded {data.event_count:,} events in {load_seconds:.1f} s, user bitmaps in {bitmap_seconds:.1f} s")
    return engine, info


def _empty(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        names = ", ".join(table.name for table in Base.metadata.sorted_tables)
        session.execute(text(f"TRUNCATE {names}"))
    else:
        delete_all(session)


def duckdb_events(data: DemoData) -> dict[str, np.ndarray]:
    """The same events as numpy columns for DuckDB (what analytics_events holds)."""
    times, kinds, ids = demo_rows.actions(data)
    is_order = kinds != SIGNUP
    order_index = np.where(is_order, ids - 1, 0)
    plan = data.order_plan[order_index]
    prices = np.array([p.price_minor_units for p in data.plans])
    currencies = np.array([p.currency for p in data.plans])
    names = np.array([EVENT_TYPES[k] for k in range(len(EVENT_TYPES))])
    amount = np.where(kinds == REFUNDED, data.order_refund_amount[order_index], prices[plan])
    has_money = np.isin(kinds, [CHECKOUT, PAID, REFUNDED])
    return {
        "event_type": names[kinds],
        "user_id": np.where(is_order, data.order_user[order_index], ids),
        "plan_id": np.where(is_order, plan + 1, -1),
        "amount_minor_units": np.where(has_money, amount, 0),
        "currency": np.where(has_money | (kinds == PAYMENT_FAILED), currencies[plan], ""),
        "occurred_at": times.astype("datetime64[s]"),
    }
