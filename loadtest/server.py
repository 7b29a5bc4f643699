"""The system under test: a fresh MariaDB database, migrated, and uvicorn serving the app."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_SECRET = "whsec_load_test_secret"
ADMIN_EMAIL = "admin@load.test"


def recreate_database(url: str) -> None:
    """Create the database if needed, drop every table in it, then `alembic upgrade head`."""
    parsed = make_url(url)
    server = create_engine(parsed.set(database=""))
    with server.begin() as conn:
        conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{parsed.database}`"))
    server.dispose()
    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    engine.dispose()
    subprocess.run([sys.executable, "-m", "app", "migrate"], cwd=ROOT, env=server_env(url, ROOT / "var"), check=True)


def server_env(url: str, mail_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": url,
        "SECRET_KEY": "load-test-secret-key-0123456789",
        "ADMIN_EMAILS": ADMIN_EMAIL,
        "EMAIL_BACKEND": "file",
        "EMAIL_FILE_DIR": str(mail_dir),
        "PAYMENT_PROVIDER": "sandbox",
        "PAYMENT_SANDBOX_AUTO_CONFIRM": "false",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # Many clients share one loopback address: the per-IP limits would stop the test itself.
        "RATE_LIMIT_IP_PER_HOUR": "1000000",
        "RATE_LIMIT_VERIFY_IP_PER_HOUR": "1000000",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(url: str, mail_dir: Path, port: int, workers: int, log_path: Path) -> subprocess.Popen:
    """uvicorn on 127.0.0.1:`port`, its log in `log_path`; returns once it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT,
        env=server_env(url, mail_dir),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/plans", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.terminate()
    raise RuntimeError("uvicorn did not answer within 60 seconds")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
