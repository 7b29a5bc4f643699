"""Demo data: deterministic, the bulk path writes what the services write, a believable funnel."""

import datetime as dt
import os
import subprocess
import sys
from collections import Counter

import pytest
from sqlalchemy import delete, func, select

from app.db import Base
from app.demo import bulk_load, delete_all, generate, replay
from app.models.analytics import AnalyticsEvent
from app.models.esim import EsimProfile
from app.models.order import Order
from app.models.plan import Plan
from app.models.user import User
from app.services.catalog import iccid_problem
from app.services.funnel_store import catch_up
from app.services.rollup_repo import rebuild as rebuild_rollups
from tests.helpers import rollup_rows
from tests.test_rollups import expected_rollups

NOW = dt.datetime(2025, 11, 20, 15, 30, tzinfo=dt.UTC)
# Insert times, not facts: the live flows stamp them with the wall clock.
INSERT_TIME_COLUMNS = {("analytics_events", "created_at"), ("payment_webhook_events", "received_at")}
CACHE_TABLES = {
    "analytics_daily_user_bitmaps", "analytics_monthly_user_bitmaps", "analytics_funnel_month_versions", "rate_limit_counters", "login_codes",
    "auth_sessions",
}  # random tokens and caches
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def snapshot(db) -> dict[str, list[tuple]]:
    """Every row of every shop table, in primary-key order, without insert-time columns."""
    db.flush()
    result = {}
    for table in Base.metadata.sorted_tables:
        if table.name in CACHE_TABLES:
            continue
        columns = [c for c in table.c if (table.name, c.name) not in INSERT_TIME_COLUMNS]
        result[table.name] = [tuple(r) for r in db.execute(select(*columns).order_by(*table.primary_key.columns))]
    return result


def test_same_seed_gives_identical_rows_and_another_seed_does_not(db):
    bulk_load(db, generate(days=40, users=500, seed=3, now=NOW), show_progress=False)
    first = snapshot(db)
    delete_all(db)
    bulk_load(db, generate(days=40, users=500, seed=3, now=NOW), show_progress=False)
    assert snapshot(db) == first
    assert len(first["analytics_events"]) > 1000
    delete_all(db)
    bulk_load(db, generate(days=40, users=500, seed=4, now=NOW), show_progress=False)
    assert snapshot(db)["analytics_events"] != first["analytics_events"]


def test_bulk_rollups_equal_a_python_recount_of_the_loaded_events(db):
    bulk_load(db, generate(days=75, users=800, seed=9, now=NOW), show_progress=False)
    e = AnalyticsEvent
    events = db.execute(select(e.event_type, e.plan_id, e.amount_minor_units, e.currency, e.occurred_at)).all()
    loaded = rollup_rows(db)
    assert loaded == expected_rollups(events)
    # Every table has rows, but the local daily totals: the rollups' zone is UTC here.
    assert all(rows for table, rows in loaded.items() if table != "analytics_local_daily_totals")
    rebuild_rollups(db)
    assert rollup_rows(db) == loaded


@pytest.mark.single_db
def test_bulk_path_writes_the_rows_the_services_write(db):
    # SQLite only: ids from a fresh table start at 1 there even inside the test's
    # transaction, while server sequences keep counting across rolled-back tests.
    data = generate(days=35, users=250, seed=5, now=NOW)
    # A database migrated by tests/test_migrations.py holds the zone its funnel rebuild recorded: start without it.
    from app.models.funnel import RollupMeta

    db.execute(delete(RollupMeta))
    replay(db, data, show_progress=False)
    while catch_up(db):  # the server's background upkeep of the funnel tables
        pass
    through_services = snapshot(db)
    delete_all(db)
    bulk_load(db, data, show_progress=False)
    bulk = snapshot(db)
    # The rebuild records the zone of the funnel rollups; live writes leave it implicit (the setting's).
    assert bulk.pop("analytics_rollup_meta") == [("local_zone", "UTC")]
    assert through_services.pop("analytics_rollup_meta") == []
    assert bulk == through_services
    kinds = Counter(status for (status,) in db.execute(select(Order.status)))
    assert set(kinds) == {"pending", "payment_failed", "paid", "activated", "refunded"}


def test_the_funnel_is_believable(db):
    data = generate(days=120, users=4000, seed=1, now=NOW)
    bulk_load(db, data, show_progress=False)
    e = AnalyticsEvent
    users_per_step = dict(db.execute(select(e.event_type, func.count(func.distinct(e.user_id))).group_by(e.event_type)).all())
    assert users_per_step["user_signup"] > users_per_step["checkout_started"] > users_per_step["payment_succeeded"] > users_per_step["esim_activated"] > 0
    orders_per_user = Counter(db.scalars(select(Order.user_id)))
    assert sum(1 for n in orders_per_user.values() if n >= 2) > 100  # repeat buyers
    statuses = Counter(db.scalars(select(Order.status)))
    assert 0 < statuses["payment_failed"] < 0.1 * sum(statuses.values())
    webhooks = Base.metadata.tables["payment_webhook_events"]
    outcomes = Counter(db.scalars(select(webhooks.c.outcome)))
    assert outcomes["payment_failed"] > outcomes["paid"] > 0  # a few failed payments, some paid on a retry
    currencies = set(db.scalars(select(e.currency).where(e.event_type == "payment_succeeded").distinct()))
    assert currencies == {"USD", "EUR", "GBP"}
    assert db.scalar(select(func.count(func.distinct(Plan.region)))) >= 5
    last = db.scalar(select(func.max(e.occurred_at)))
    assert last.date() == NOW.date() and last <= NOW
    signup_days = [at.date() for at in db.scalars(select(e.occurred_at).where(e.event_type == "user_signup"))]
    first_month = sum(1 for d in signup_days if d < data.start.date() + dt.timedelta(days=30))
    last_month = sum(1 for d in signup_days if d > NOW.date() - dt.timedelta(days=30))
    assert last_month > 1.5 * first_month  # growth
    by_weekday = Counter(d.weekday() for d in signup_days)
    assert by_weekday[5] > 1.2 * by_weekday[0]  # Saturdays beat Mondays
    for plan_id, free in db.execute(select(EsimProfile.plan_id, func.count()).where(EsimProfile.order_id.is_(None)).group_by(EsimProfile.plan_id)):
        assert free >= 10  # inventory left on every plan
    assert {iccid_problem(iccid) for iccid in db.scalars(select(EsimProfile.iccid))} == {None}
    assert db.scalar(select(func.count()).select_from(User)) == len(data.user_signup_at)


@pytest.mark.single_db
def test_command_loads_once_refuses_twice_and_if_empty_is_quiet(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    assert run("migrate").returncode == 0
    loaded = run("demo-data", "--days", "30", "--users", "300", "--seed", "2")
    assert loaded.returncode == 0, loaded.stderr
    assert "admin@shop.test" in loaded.stdout and "Loaded" in loaded.stdout
    again = run("demo-data", "--days", "30", "--users", "300")
    assert again.returncode == 1 and "--force" in again.stderr
    quiet = run("demo-data", "--if-empty")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert run("demo-data", "--days", "30", "--users", "300", "--seed", "2", "--force").returncode == 0
    rebuilt = run("rebuild-rollups")
    assert rebuilt.returncode == 0 and "analytics_daily_totals" in rebuilt.stdout
