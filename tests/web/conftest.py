"""Browser-test fixtures: a real uvicorn server on a migrated SQLite file with known data,
and Debian's Chromium driven by Playwright (never a downloaded browser)."""

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.conftest import MAIL_DIR, ROOT, empty_tables
from tests.helpers import Mailbox
from tests.web.seed import seed_shop

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAPTOP = {"width": 1366, "height": 900}
WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS: list[Path] = []


def pytest_terminal_summary(terminalreporter):
    if SCREENSHOTS:
        terminalreporter.write_line(f"browser screenshots ({len(SCREENSHOTS)}) saved in {SCREENSHOTS[0].parent}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(base_url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base_url}/login", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"uvicorn did not answer within 30 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def live_server(request, engine, today, tmp_path_factory):
    """uvicorn serving app.main:app in its own process on the test database, with the seeded shop
    (or the module's own `SEED_SHOP(session, today)`)."""
    seed = getattr(request.module, "SEED_SHOP", seed_shop)
    with Session(engine) as session:
        seed(session, today)
        session.commit()
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "uvicorn.log"
    # The environment set by tests/conftest.py: DATABASE_URL, EMAIL_BACKEND=file, ADMIN_EMAILS, ...
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url, process, log)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        empty_tables(engine)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def screenshot(artifacts_dir):
    """Save a screenshot (the whole page, or what the viewport shows) under test-artifacts/screenshots/."""
    folder = artifacts_dir / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def save(page, name: str, full_page: bool = True) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        SCREENSHOTS.append(path)
        print(f"screenshot: {path}")
        return path

    return save


def new_context(browser, base_url: str, viewport: dict = LAPTOP, storage_state=None):
    return browser.new_context(
        base_url=base_url, viewport=viewport, locale="en-US", timezone_id="UTC", storage_state=storage_state, accept_downloads=True
    )


def login_through_pages(page, base_url: str, email: str, wanted_path: str, screenshot=None) -> None:
    """Ask for `wanted_path`, get sent to /login, and log in with the emailed code."""
    mailbox = Mailbox(MAIL_DIR)
    sent_before = len(mailbox.messages(email))
    page.goto(wanted_path)
    assert re.search(r"/login\?next=", page.url), page.url
    page.get_by_label("Email address").fill(email)
    if screenshot:
        screenshot(page, "login-email-step")
    page.get_by_role("button", name="Email me a code").click()
    page.get_by_label("6-digit code").wait_for()
    if screenshot:
        screenshot(page, "login-code-step")
    assert len(mailbox.messages(email)) == sent_before + 1
    page.get_by_label("6-digit code").fill(mailbox.last_code(email))
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}{wanted_path}")


@pytest.fixture(scope="module")
def admin_state(browser, live_server):
    """Cookies of an admin logged in through the pages, shared by the module's tests."""
    context = new_context(browser, live_server)
    page = context.new_page()
    login_through_pages(page, live_server, "admin@shop.test", "/admin")
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def admin_page(browser, live_server, admin_state):
    """A laptop-sized page logged in as the admin; fails the test on any script error."""
    context = new_context(browser, live_server, storage_state=admin_state)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.script_errors = errors
    yield page
    context.close()
    assert errors == [], errors
