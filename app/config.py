"""Settings, read from the environment and `.env` (see `.env.example`)."""

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("var") / "shop.db"
PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev", "development"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    app_env: str = "development"
    database_url: str = f"sqlite:///./{DEFAULT_SQLITE_PATH.as_posix()}"
    secret_key: str = ""
    admin_emails: str = ""
    cors_origins: str = ""

    email_backend: str = "console"
    email_file_dir: str = "var/mail"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "shop@localhost"
    smtp_starttls: bool = False

    payment_provider: str = "sandbox"
    payment_sandbox_auto_confirm: bool = False
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = ""

    default_currency: str = "USD"
    # Currency reports convert into (ECB rates in fx_rates) when the dashboard asks for one total.
    reporting_currency: str = "USD"
    # true: plans with no available eSIM profile can still be ordered (activation waits for stock).
    allow_backorders: bool = False
    analytics_default_range_days: int = Field(30, ge=1, le=365)
    analytics_projection_window_days: int = Field(14, ge=3, le=90)
    analytics_projection_horizon_days: int = Field(7, ge=1, le=30)
    # Complete days before as_of that the seasonal methods and the backtest may use.
    analytics_forecast_training_days: int = Field(365, ge=28, le=730)
    # Seconds between the server's background refreshes of the unique-user bitmaps
    # (0: never; `python -m app refresh-bitmaps` does the same from a shell or cron).
    analytics_bitmap_refresh_seconds: int = Field(60, ge=0)
    # IANA zone whose local calendar days the reports use by default (and the funnel rollups are keyed by).
    analytics_timezone: str = "UTC"
    # Comma list of emails (or *@domain) left out of reports with exclude_internal=true, besides admins.
    analytics_exclude_emails: str = ""
    # Which engine answers the admin reports: the shop's own database, or ClickHouse fed
    # from analytics_events (`python -m app warehouse ...`, see app/services/warehouse.py).
    analytics_engine: Literal["sql", "clickhouse"] = "sql"
    # ClickHouse unreachable: "" answers 503, "sql" answers from the shop's database.
    analytics_engine_fallback: Literal["", "sql"] = ""
    # chdb://<folder> (embedded; chdb:///abs/path or chdb://relative/path) or
    # clickhouse://user:pass@host:9000/db (a server or a cluster node, native protocol).
    clickhouse_url: str = "chdb://var/warehouse"
    # A cluster of the server's remote_servers: *_local tables on every shard plus a Distributed table.
    clickhouse_cluster: str = ""
    # Seconds between the server's background shipping passes when ANALYTICS_ENGINE=clickhouse (0: off).
    warehouse_sync_interval_seconds: float = Field(1.0, ge=0)

    login_code_ttl_seconds: int = 600
    login_code_max_attempts: int = 5
    rate_limit_email_per_hour: int = 5
    rate_limit_ip_per_hour: int = 30
    rate_limit_verify_ip_per_hour: int = 60
    session_ttl_days: int = 30
    max_body_bytes: int = 256 * 1024

    @field_validator("default_currency", "reporting_currency")
    @classmethod
    def _upper_currency(cls, value: str) -> str:
        return value.strip().upper()

    @field_validator("analytics_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"ANALYTICS_TIMEZONE: {value!r} is not an IANA time zone") from None
        return value.strip()

    @field_validator("email_backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in {"console", "file", "smtp"}:
            raise ValueError("EMAIL_BACKEND must be console, file or smtp")
        return value

    @field_validator("payment_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in {"sandbox", "stripe"}:
            raise ValueError("PAYMENT_PROVIDER must be sandbox or stripe")
        return value

    @model_validator(mode="after")
    def _secret_key(self) -> "Settings":
        if self.secret_key.strip().lower() in PLACEHOLDER_SECRETS or len(self.secret_key) < 16:
            if self.is_production:
                raise ValueError("SECRET_KEY must be set to a real secret (16+ characters) in production")
            self.secret_key = _development_secret()
        return self

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def admin_email_set(self) -> set[str]:
        return {e.strip().lower() for e in self.admin_emails.split(",") if e.strip()}

    @property
    def analytics_exclude_patterns(self) -> list[str]:
        return [e.strip().lower() for e in self.analytics_exclude_emails.split(",") if e.strip()]

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


def _development_secret() -> str:
    """A random key kept in var/ so codes survive a restart of the dev server."""
    path = Path("var") / "secret_key"
    try:
        return path.read_text().strip() or _write_secret(path)
    except FileNotFoundError:
        return _write_secret(path)


def _write_secret(path: Path) -> str:
    key = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key)
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
