"""Which engine answers the admin reports (ANALYTICS_ENGINE), as a request dependency."""

import logging
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.deps import DB, AppSettings
from app.models.plan import Plan
from app.services.clickhouse_client import WarehouseQueryError, WarehouseUnavailable
from app.services.clickhouse_engine import ClickHouseEngine
from app.services.report_engine import ReportEngine
from app.services.warehouse import open_warehouse

log = logging.getLogger(__name__)


def plan_names(session: Session):
    """Plan names by id from the shop's database, for the warehouse's top plans."""

    def names(ids: Iterable[int]) -> dict[int, str]:
        return dict(session.execute(select(Plan.id, Plan.name).where(Plan.id.in_(list(ids)))).all())

    return names


def report_source(session: DB, settings: AppSettings) -> Session | ReportEngine:
    """The shop's session (SQL engine) or a ClickHouse engine; 503 when ClickHouse cannot answer."""
    if settings.analytics_engine == "sql":
        return session
    try:
        engine = ClickHouseEngine(open_warehouse(settings), plan_names(session))
        if engine.fresh_as_of() is None:  # reads the shipping cursor: reachable, initialised, filled
            raise WarehouseUnavailable(
                "The analytics warehouse (ClickHouse) has not finished its first sync; "
                "run `python -m app warehouse sync` or wait for the server's shipper"
            )
        return engine
    except (WarehouseUnavailable, WarehouseQueryError) as exc:
        if settings.analytics_engine_fallback == "sql":
            log.warning("ClickHouse cannot answer, reports fall back to the SQL engine: %s", exc)
            return session
        if isinstance(exc, WarehouseUnavailable):
            raise
        raise WarehouseUnavailable(
            "The analytics warehouse (ClickHouse) cannot answer yet; run `python -m app warehouse init` and "
            f"`python -m app warehouse sync` ({str(exc).splitlines()[0][:200]})"
        ) from exc


ReportSource = Annotated[Session | ReportEngine, Depends(report_source)]
