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
