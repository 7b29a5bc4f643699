"""`python -m app demo-data`: load demo activity once, then say how to log in as admin."""

import datetime as dt
import sys
import time

from app.config import get_settings
from app.db import get_sessionmaker, utc_now
from app.demo.generate import generate
from app.demo.load import bulk_load, delete_all, has_data
from app.demo.replay import replay
from app.services.unique_users import refresh_bitmaps


def load_demo_data(
    *, days: int, users: int, seed: int, if_empty: bool = False, force: bool = False,
    through_services: bool = False, now: dt.datetime | None = None,
) -> int:
    """The command's body; returns the exit code."""
    if days < 1 or users < 1:
        print("--days and --users must be at least 1", file=sys.stderr)
        return 2
    now = now or utc_now()
    began = time.perf_counter()
    with get_sessionmaker().begin() as session:
        if has_data(session):
            if if_empty:
                return 0
            if not force:
                print("The database already has shop data; nothing loaded. Use --force to replace it.", file=sys.stderr)
                return 1
            delete_all(session)
        data = generate(days=days, users=users, seed=seed, now=now)
        if through_services:
            replay(session, data)
        else:
            bulk_load(session, data)
        # Unique-user bitmaps for every day, so the first dashboard view is instant.
        refresh_bitmaps(session, data.start.date(), now.date(), today=now.date())
    seconds = time.perf_counter() - began
    print(
        f"Loaded {data.event_count:,} events: {len(data.user_signup_at):,} users, {len(data.order_user):,} orders, "
        f"{len(data.plans)} plans over {days} days ending {now.date()} (seed {seed}) in {seconds:.1f} s."
    )
    print(admin_hint())
    return 0


def admin_hint() -> str:
    """How to reach the dashboard as an admin with the current settings."""
    settings = get_settings()
    admins = sorted(settings.admin_email_set)
    if admins:
        who = f"Log in at http://127.0.0.1:8000/login as {admins[0]} (ADMIN_EMAILS)"
    else:
        who = ("ADMIN_EMAILS is empty: set ADMIN_EMAILS=you@example.com (in .env) and log in at "
               "http://127.0.0.1:8000/login with that address, or request a code for any address and run "
               "`python -m app grant-admin EMAIL`")
    if settings.email_backend == "console":
        where = "the login code is printed in the terminal running the server (EMAIL_BACKEND=console)"
    elif settings.email_backend == "file":
        where = f"the login code is written to {settings.email_file_dir}/ (EMAIL_BACKEND=file)"
    else:
        where = "the login code is emailed via SMTP"
    return f"{who}; {where}. Then open http://127.0.0.1:8000/admin/analytics."
