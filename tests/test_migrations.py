"""Migrations: named YYYYMMDD_slug, and downgrade/upgrade work on every database."""

import re
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from app.db import Base
from tests.conftest import alembic_config

VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"


def test_revisions_are_named_by_date_and_slug():
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(script.walk_revisions())
    assert revisions
    for revision in revisions:
        assert re.fullmatch(r"\d{8}_[a-z0-9_]+", revision.revision), revision.revision
        assert Path(revision.path).stem == revision.revision
    assert script.get_revision("20251121_add_analytics_events") is not None


def test_downgrade_to_base_and_upgrade_again(engine):
    config = alembic_config()
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "20251121_add_analytics_events")
    assert "analytics_events" in inspect(engine).get_table_names()
    command.upgrade(config, "head")
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_event_table_has_the_contract_columns(engine):
    columns = {c["name"]: c for c in inspect(engine).get_columns("analytics_events")}
    for name in ("id", "event_type", "user_id", "order_id", "plan_id", "amount_minor_units", "currency", "metadata", "occurred_at", "created_at"):
        assert name in columns
    for name in ("user_id", "order_id", "plan_id", "amount_minor_units", "currency"):
        assert columns[name]["nullable"]
    assert not columns["dedupe_key"]["nullable"]
    uniques = inspect(engine).get_unique_constraints("analytics_events")
    indexes = inspect(engine).get_indexes("analytics_events")
    assert any(u["column_names"] == ["dedupe_key"] for u in uniques) or any(
        i["column_names"] == ["dedupe_key"] and i["unique"] for i in indexes
    )


def test_window_rollups_are_filled_from_the_narrow_rollups(engine):
    """20261205_funnel_windows, 20261206_funnel_fine_gaps and 20261208_funnel_value_windows fill the window
    rollups from the existing rows as a rebuild would write them."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from app.models.funnel import FunnelFineGapWindowRollup, FunnelGapWindowRollup, FunnelValueWindowRollup, FunnelWindowRollup
    from app.services.funnel_rebuild import rebuild_funnel
    from tests.conftest import drop_everything
    from tests.funnel_helpers import History

    config = alembic_config()
    tables = (FunnelWindowRollup, FunnelGapWindowRollup, FunnelFineGapWindowRollup, FunnelValueWindowRollup)

    def rows() -> dict:
        with Session(engine) as session:
            return {m.__tablename__: sorted(tuple(r) for r in session.execute(select(*m.__table__.c))) for m in tables}

    try:
        command.downgrade(config, "20261204_local_daily_totals")
        with Session(engine) as session:
            h = History(session)
            # Signups on Nov 1..5 at 10:00. Checkouts at delays 0 (same instant), 1 and 3 days and one
            # before its signup (not a step); payments at delays 0, 2 and 18 days.
            orders = [("2026-11-01 10:00", "2026-11-01 10:00"), ("2026-11-02 10:30", "2026-11-04 09:00"), None,
                      ("2026-11-07 10:00", "2026-11-22 10:00"), ("2026-11-02 11:00", "2027-01-16 10:00")]
            for n, order in enumerate(orders):
                user = h.user(f"2026-11-0{n + 1} 10:00")
                if order:
                    h.order(user, *order)
            rebuild_funnel(session, with_windows=False)
            session.commit()
            plan_key = f"{h.plan.id}|JPY"
        command.upgrade(config, "head")
        migrated = rows()
        with Session(engine) as session:
            rebuild_funnel(session)
            session.commit()
        rebuilt = rows()
        assert migrated == rebuilt
        user_steps = {(r[5], r[6:]) for r in rebuilt["analytics_funnel_windows"] if r[0] == "user" and r[1] == "base" and r[2] == "m"}
        # November, per stored window 1, 3, 7, 14, 30, 60, 90 days: 5 signups; checkouts 2 within a
        # day, 3 from 3 days on; payments 1 within a day, 2 within 3..14 days, 3 from 30 days on.
        assert user_steps == {(1, (5, 5, 5, 5, 5, 5, 5)), (2, (2, 3, 3, 3, 3, 3, 3)), (3, (1, 2, 2, 2, 3, 3, 3))}
        # Fine buckets of the checkouts' gaps from signup: 0 s (fine 0), 30 min = 1800 s (1 + floor(64 log2 1800) = 693),
        # 3 days = 259,200 s (1 + floor(64 × 17.984) = 1151, reached within 3 days on): November's month rows.
        fine_checkouts = {r[4]: r[7:] for r in rebuilt["analytics_funnel_fine_gap_windows"]  # kind, chain, period, step, fine, days
                          if r[:4] == ("user", "base", "m", 2)}
        assert fine_checkouts == {0: (1, 1, 1, 1, 1, 1, 1), 693: (1, 1, 1, 1, 1, 1, 1), 1151: (0, 1, 1, 1, 1, 1, 1)}
        # Signups by breakdown key (kind, chain, period, days, step, bucket, key): the checkout's plan and currency
        # from the window holding it (1 day for two of them, 3 days for the third), none for the other two.
        signups_by_key = {r[7]: r[8:] for r in rebuilt["analytics_funnel_value_windows"] if r[:3] == ("user", "base", "m") and r[5] == 1}
        assert signups_by_key == {plan_key: (2, 3, 3, 3, 3, 3, 3), "": (3, 2, 2, 2, 2, 2, 2)}
    finally:
        drop_everything(engine)
        command.upgrade(config, "head")
