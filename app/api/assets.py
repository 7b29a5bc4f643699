"""Assets served from installed packages, so nothing comes from a CDN: plotly.js (sent
gzip-compressed), the Swagger UI and ReDoc pages with their files, and the favicon."""

import base64
import gzip
import hashlib
import re
from functools import lru_cache
from pathlib import Path

import fastapi_offline
import plotly
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from app.web import STATIC_DIR

router = APIRouter(include_in_schema=False)

PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
# Swagger UI and ReDoc as shipped in the fastapi-offline wheel; main.py mounts this folder.
DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_ASSETS_URL = "/static/docs"
FAVICON_URL = "/static/favicon.svg"
LONG_CACHE = {"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@lru_cache(maxsize=1)
def plotly_gzip() -> bytes:
    """plotly.min.js compressed once per process (level 9: 4.8 MB become about 1.47 MB)."""
    return gzip.compress(PLOTLY_JS.read_bytes(), compresslevel=9, mtime=0)


def accepts_gzip(request: Request) -> bool:
    codings = {part.split(";")[0].strip().lower() for part in request.headers.get("accept-encoding", "").split(",")}
    return "gzip" in codings or "*" in codings


@router.api_route("/static/vendor/plotly.min.js", methods=["GET", "HEAD"])
def plotly_js(request: Request) -> Response:
    """plotly.js exactly as shipped in the installed `plotly` wheel, gzip-compressed when the client takes it."""
    # Pages ask for it with ?v=<plotly version>, so a browser may keep it until the version changes.
    headers = {**LONG_CACHE, "Vary": "Accept-Encoding"}
    if not accepts_gzip(request):
        return FileResponse(PLOTLY_JS, media_type="text/javascript", headers=headers)
    body = plotly_gzip()
    headers["Content-Encoding"] = "gzip"
    if request.method == "HEAD":
        return Response(media_type="text/javascript", headers={**headers, "Content-Length": str(len(body))})
    return Response(body, media_type="text/javascript", headers=headers)


def with_csp(page: HTMLResponse) -> HTMLResponse:
    """Only this site's scripts plus the page's own inline start-up script (by its hash)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(page.body.decode())
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    page.headers["X-Content-Type-Options"] = "nosniff"
    return page


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for /openapi.json, with its files served by this app (works offline)."""
    return with_csp(
        get_swagger_ui_html(
            openapi_url=request.app.openapi_url,
            title=f"{request.app.title} - Swagger UI",
            oauth2_redirect_url=request.app.swagger_ui_oauth2_redirect_url,
            swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=FAVICON_URL,
            # No badge from validator.swagger.io: nothing leaves the site.
            swagger_ui_parameters={"validatorUrl": None},
        )
    )


@router.get("/docs/oauth2-redirect")
def swagger_ui_redirect() -> HTMLResponse:
    return with_csp(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """ReDoc for /openapi.json, with its script served by this app (works offline)."""
    return with_csp(
        get_redoc_html(
            openapi_url=request.app.openapi_url,
            title=f"{request.app.title} - ReDoc",
            redoc_js_url=f"{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=FAVICON_URL,
            with_google_fonts=False,
        )
    )


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """Browsers ask for it on every page; the site's icon instead of a 404."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})
