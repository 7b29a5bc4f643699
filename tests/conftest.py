"""Test set-up: one migrated database per run, one rolled-back transaction per test.

The database comes from TEST_DATABASE_URL (MariaDB/MySQL or PostgreSQL) or is a fresh
SQLite file. `make test` (tests/run_all.py) runs the suite once per configured database.
"""

import os
import tempfile
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="shop-tests-"))
TEST_DATABASE = os.environ.get("TEST_DATABASE", "sqlite")
DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{_TMP / 'test.db'}"
MAIL_DIR = _TMP / "mail"
ARTIFACTS_DIR = Path(os.environ.get("TEST_ARTIFACTS_DIR", Path.cwd() / "test-artifacts")).resolve()

os.environ.update(
    {
        "APP_ENV": "test",
        "DATABASE_URL": DATABASE_URL,
        "SECRET_KEY": "test-secret-key-0123456789abcdef",
        "ADMIN_EMAILS": "admin@shop.test",
        "EMAIL_BACKEND": "file",
        "EMAIL_FILE_DIR": str(MAIL_DIR),
        "PAYMENT_PROVIDER": "sandbox",
        "PAYMENT_SANDBOX_AUTO_CONFIRM": "false",
        "STRIPE_WEBHOOK_SECRET": "whsec_test_secret",
        "RATE_LIMIT_EMAIL_PER_HOUR": "5",
        "RATE_LIMIT_IP_PER_HOUR": "100000",
        "RATE_LIMIT_VERIFY_IP_PER_HOUR": "100000",
        "CORS_ORIGINS": "http://shop.test",
        # Tests build the bitmap cache themselves; no background writer beside their transactions.
        "ANALYTICS_BITMAP_REFRESH_SECONDS": "0",
    }
)

import pytest  # noqa: E402
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import MetaData  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.api.deps import get_db, unit_of_work  # noqa: E402
from app.config import get_settings  # noqa: E402
from app.db import Base, get_engine  # noqa: E402
from app.main import app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    config.addinivalue_line("markers", "single_db: runs once, on the SQLite pass only (browser, fuzz, load)")
    config.addinivalue_line("markers", "server_db: needs MariaDB/MySQL or PostgreSQL (row locks, real concurrency)")


def pytest_report_header(config):
    return f"database: {TEST_DATABASE} ({get_engine().url.render_as_string(hide_password=True)})"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "single_db" in item.keywords and TEST_DATABASE != "sqlite":
            item.add_marker(pytest.mark.skip(reason="runs on the SQLite pass only"))
        if "server_db" in item.keywords and TEST_DATABASE == "sqlite":
            item.add_marker(
                pytest.mark.skip(reason="needs MariaDB or PostgreSQL: set TEST_MYSQL_URL / TEST_POSTGRES_URL")
            )


def drop_everything(engine) -> None:
    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)


def alembic_config() -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", DATABASE_URL.replace("%", "%%"))
    return config


@pytest.fixture(scope="session")
def engine():
    engine = get_engine()
    drop_everything(engine)
    command.upgrade(alembic_config(), "head")
    yield engine
    engine.dispose()


@pytest.fixture
def settings():
    return get_settings()


@pytest.fixture
def connection(engine):
    with engine.connect() as connection:
        outer = connection.begin()
        yield connection
        if outer.is_active:
            outer.rollback()


@pytest.fixture
def db(connection) -> Session:
    """A session inside the test's transaction; everything is rolled back afterwards."""
    with Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as session:
        yield session


@pytest.fixture
def client(connection):
    """The app, with each request's unit of work inside the test's transaction."""

    def test_db():
        session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield from unit_of_work(session)
        finally:
            session.close()

    app.dependency_overrides[get_db] = test_db
    with TestClient(app) as test_client:
        yield test_client
    app.dependency_overrides.pop(get_db, None)


@pytest.fixture
def live_client(engine):
    """The app on the real engine: every request commits for real. Tables are emptied after."""
    with TestClient(app) as test_client:
        yield test_client
    empty_tables(engine)


def empty_tables(engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def mailbox():
    from tests.helpers import Mailbox

    return Mailbox(MAIL_DIR)


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR
