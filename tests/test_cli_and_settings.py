"""Commands of `python -m app` and the settings rules."""

import subprocess
import sys

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from app.cli import main
from app.config import Settings
from app.db import get_sessionmaker
from app.models.esim import EsimProfile
from app.models.user import User
from tests import factories
from tests.helpers import valid_iccid


def run_cli(*args) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code


def test_help_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "app", "--help"], capture_output=True, text=True, check=True)
    for name in ("serve", "migrate", "grant-admin", "revoke-admin", "import-profiles"):
        assert name in result.stdout


def test_grant_and_revoke_admin(live_client, capsys):
    with get_sessionmaker().begin() as session:
        factories.create_user(session, email="staff@shop.test")
    assert run_cli("grant-admin", "Staff@Shop.test") == 0
    with get_sessionmaker()() as session:
        assert session.scalar(select(User.is_admin).where(User.email == "staff@shop.test")) is True
    assert run_cli("revoke-admin", "staff@shop.test") == 0
    with get_sessionmaker()() as session:
        assert session.scalar(select(User.is_admin).where(User.email == "staff@shop.test")) is False
    assert run_cli("grant-admin", "nobody@shop.test") == 1
    assert "No user" in capsys.readouterr().err


def test_import_profiles_from_csv_all_or_nothing(live_client, tmp_path, capsys):
    with get_sessionmaker().begin() as session:
        plan_id = factories.create_plan(session).id
    good = [valid_iccid(f"8944500000000000{i:02d}") for i in range(3)]
    path = tmp_path / "profiles.csv"
    path.write_text("iccid,activation_code\n" + "".join(f"{i},LPA:1$smdp${i}\n" for i in good))
    assert run_cli("import-profiles", str(plan_id), str(path)) == 0
    assert "Imported 3" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text(f"iccid,activation_code\n{valid_iccid('894460000000000000')},x\n8944600000000000001,y\n")
    assert run_cli("import-profiles", str(plan_id), str(bad)) == 1
    assert "Nothing imported" in capsys.readouterr().err
    with get_sessionmaker()() as session:
        assert sorted(session.scalars(select(EsimProfile.iccid)).all()) == sorted(good)


def test_production_refuses_a_placeholder_secret():
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(app_env="production", secret_key="change-me", _env_file=None)
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(app_env="production", secret_key="", _env_file=None)
    assert Settings(app_env="production", secret_key="x" * 32, _env_file=None).is_production


def test_settings_defaults_follow_the_contract(monkeypatch):
    for name in ("DATABASE_URL", "ADMIN_EMAILS", "EMAIL_BACKEND", "PAYMENT_PROVIDER", "PAYMENT_SANDBOX_AUTO_CONFIRM", "STRIPE_WEBHOOK_SECRET", "APP_ENV", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None, secret_key="y" * 32)
    assert settings.app_env == "development"
    assert settings.database_url.startswith("sqlite:///") and "var/" in settings.database_url
    assert settings.email_backend == "console" and settings.payment_provider == "sandbox"
    assert settings.payment_sandbox_auto_confirm is False and settings.stripe_webhook_secret == ""
    assert settings.default_currency == "USD"
    assert (settings.analytics_default_range_days, settings.analytics_projection_window_days, settings.analytics_projection_horizon_days) == (30, 14, 7)


def test_env_example_lists_every_setting():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    listed = {line.split("=", 1)[0] for line in text.splitlines() if "=" in line and not line.startswith("#")}
    assert {name.upper() for name in Settings.model_fields} == listed
