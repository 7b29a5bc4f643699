"""The ASGI application: `app.main:app`."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from app.api import admin, assets, auth, funnel, orders, pages, plans, support
from app.config import get_settings
from app.errors import AppError
from app.middleware import BufferedRetryMiddleware
from app.services import bitmap_refresher, warehouse_shipper
from app.web import STATIC_DIR

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    interval = settings.analytics_bitmap_refresh_seconds
    tasks = [asyncio.create_task(bitmap_refresher.run(interval))] if interval else []
    if settings.analytics_engine == "clickhouse" and settings.warehouse_sync_interval_seconds:
        tasks.append(asyncio.create_task(warehouse_shipper.run(settings.warehouse_sync_interval_seconds)))
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app() -> FastAPI:
    settings = get_settings()
    # /docs and /redoc are assets.router's: the same pages with files served here, not from a CDN.
    app = FastAPI(
        title="eSIM shop",
        version="0.1.0",
        description="eSIM shop with built-in funnel analytics",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    for router in (auth.router, plans.router, orders.router, admin.router, funnel.router, support.router, pages.router, assets.router):
        app.include_router(router)
    # After the routers: /static/vendor/plotly.min.js is a route serving the plotly wheel's copy.
    app.mount(assets.DOCS_ASSETS_URL, StaticFiles(directory=assets.DOCS_ASSETS_DIR), name="docs-assets")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Default body, but never echo the raw input back (it may be a login code).
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    # Credentials only for configured origins; no origins configured means same-origin only.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origin_list,
        allow_credentials=True,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )
    app.add_middleware(BufferedRetryMiddleware, max_body_bytes=settings.max_body_bytes)
    # Outermost: every answer of 500 bytes or more is compressed for clients that take gzip
    # (JSON, pages, CSS/JS, CSV); answers already encoded (plotly.js) pass untouched.
    app.add_middleware(GZipMiddleware, minimum_size=500, compresslevel=6)
    return app


app = create_app()
