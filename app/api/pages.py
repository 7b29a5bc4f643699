"""HTML pages: login, the admin home and the analytics dashboard (app/web/templates)."""

from typing import Annotated
from urllib.parse import quote, urlsplit

import plotly
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from app.api.auth import client_ip, send_login_code, set_session_cookie
from app.api.deps import DB, SESSION_COOKIE, AppSettings, after_commit, optional_user, request_token
from app.config import Settings
from app.db import utc_now
from app.errors import TooManyRequests
from app.models.analytics import FUNNEL
from app.models.funnel import STORED_WINDOWS
from app.models.user import User
from app.schemas.auth import RequestCodeIn
from app.services import auth as auth_service
from app.services import fx
from app.web import TEMPLATES_DIR, csrf
from app.web.money import DEFAULT_DECIMALS, currency_decimals

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=TEMPLATES_DIR)

DEFAULT_NEXT = "/admin"
EVENT_LABELS = {
    "user_signup": "Signups",
    "checkout_started": "Checkout starts",
    "payment_succeeded": "Payments",
    "esim_activated": "Activations",
}
OptionalUser = Annotated[User | None, Depends(optional_user)]
# The dashboard is a page of this site only: no framing, no foreign scripts. Plotly
# sets inline styles on its SVG, hence 'unsafe-inline' for styles alone.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def safe_next(value: str | None) -> str:
    """A same-site relative path to return to after login; anything else goes to /admin."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return DEFAULT_NEXT
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return DEFAULT_NEXT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return value


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def render(request: Request, settings: Settings, name: str, context: dict, status_code: int = 200) -> Response:
    """Render a page with a CSRF token for its forms and the security headers."""
    nonce, is_new = csrf.ensure_nonce(request)
    response = templates.TemplateResponse(
        request,
        name,
        {"csrf_token": csrf.form_token(settings.secret_key, nonce), "plotly_version": plotly.__version__, **context},
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
    if is_new:
        csrf.set_nonce_cookie(response, request, nonce, settings.is_production)
    return response


def forbidden_page(request: Request, settings: Settings, user: User | None, message: str) -> Response:
    return render(request, settings, "403.html", {"user": user, "message": message}, status_code=403)


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse(DEFAULT_NEXT, status_code=303)


def csrf_refusal(request: Request, settings: Settings, csrf_token: str) -> Response | None:
    """The 403 page for a form that did not come from this site, or None when it did."""
    try:
        csrf.check(request, settings.secret_key, csrf_token)
    except csrf.CsrfError as exc:
        return forbidden_page(request, settings, None, str(exc))
    return None


@router.get("/login")
def login_page(request: Request, settings: AppSettings, user: OptionalUser, next: str | None = None) -> Response:
    """Step 1 of login: ask for the email address."""
    target = safe_next(next)
    if user is not None:
        return RedirectResponse(target, status_code=303)
    return render(request, settings, "login.html", {"step": "email", "next": target, "email": "", "error": None})


@router.post("/login")
def login_request_code(
    request: Request,
    session: DB,
    settings: AppSettings,
    email: Annotated[str, Form(max_length=254)] = "",
    next: Annotated[str, Form(max_length=2000)] = DEFAULT_NEXT,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Step 2 of login: email a code, then ask for it."""
    target = safe_next(next)
    if refused := csrf_refusal(request, settings, csrf_token):
        return refused
    context = {"step": "email", "next": target, "email": email.strip(), "error": None}
    try:
        address = RequestCodeIn(email=email).email
    except ValidationError:
        context["error"] = "Enter a valid email address, like name@example.com."
        return render(request, settings, "login.html", context, status_code=422)
    try:
        user, code = auth_service.request_code(session, settings, address, client_ip(request))
    except TooManyRequests as exc:
        # The counters must still be committed, so the error is rendered, not raised.
        context["error"] = exc.detail
        return render(request, settings, "login.html", context, status_code=429)
    after_commit(session, lambda: send_login_code(settings, user.email, code))
    context.update(step="code", email=address, code_minutes=settings.login_code_ttl_seconds // 60)
    return render(request, settings, "login.html", context)


@router.post("/login/verify")
def login_verify(
    request: Request,
    session: DB,
    settings: AppSettings,
    email: Annotated[str, Form(max_length=254)] = "",
    code: Annotated[str, Form(max_length=12)] = "",
    next: Annotated[str, Form(max_length=2000)] = DEFAULT_NEXT,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Step 3 of login: check the code, set the session cookie and go back to `next`."""
    target = safe_next(next)
    if refused := csrf_refusal(request, settings, csrf_token):
        return refused
    address = email.strip().lower()
    context = {"step": "code", "next": target, "email": address, "error": None, "code_minutes": settings.login_code_ttl_seconds // 60}
    try:
        result = auth_service.verify_code(session, settings, address, code.strip(), client_ip(request))
    except TooManyRequests as exc:
        context["error"] = exc.detail
        return render(request, settings, "login.html", context, status_code=429)
    if result.error:
        context["error"] = result.error + ("." if result.too_many else ". Check the email and try again.")
        if result.too_many:
            context["step"] = "email"
        return render(request, settings, "login.html", context, status_code=429 if result.too_many else 400)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, settings, result.token)
    return response


@router.post("/logout")
def logout(
    request: Request,
    session: DB,
    settings: AppSettings,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """End this browser's session and go to the login page."""
    if refused := csrf_refusal(request, settings, csrf_token):
        return refused
    token = request_token(request)
    if token:
        auth_service.revoke_token(session, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/admin")
def admin_home(request: Request, settings: AppSettings, user: OptionalUser) -> Response:
    """Navigation cards for admins."""
    if user is None:
        return login_redirect(request)
    if not user.is_admin:
        return forbidden_page(request, settings, user, "This page is for shop administrators.")
    return render(request, settings, "admin.html", {"user": user})


@router.get("/admin/analytics")
def analytics_page(request: Request, session: DB, settings: AppSettings, user: OptionalUser) -> Response:
    """The funnel dashboard; its data comes from the /admin/analytics/* JSON API."""
    if user is None:
        return login_redirect(request)
    if not user.is_admin:
        return forbidden_page(request, settings, user, "The analytics dashboard is for shop administrators.")
    config = {
        "today": utc_now().date().isoformat(),
        # The page works out "today" in the chosen zone from the server's clock, not the browser's.
        "now": utc_now().isoformat(),
        "defaultTimezone": settings.analytics_timezone,
        "eventTypes": [{"value": e.value, "label": EVENT_LABELS[e.value]} for e in FUNNEL],
        "defaultRangeDays": settings.analytics_default_range_days,
        "defaultWindowDays": settings.analytics_projection_window_days,
        "defaultHorizonDays": settings.analytics_projection_horizon_days,
        "defaultCurrency": settings.default_currency,
        # None until ECB rates for it are loaded: the finance panel then shows each currency only.
        "reportingCurrency": settings.reporting_currency if settings.reporting_currency in fx.known_currencies(session) else None,
        "reportingCurrencySetting": settings.reporting_currency,
        "currencyDecimals": currency_decimals(),
        "defaultDecimals": DEFAULT_DECIMALS,
    }
    return render(
        request,
        settings,
        "analytics.html",
        {
            "user": user,
            "config": config,
            "event_types": config["eventTypes"],
            "window_choices": sorted({3, 7, 14, 28, 30, 60, 90, settings.analytics_projection_window_days}),
            "horizon_choices": sorted({1, 7, 14, 30, settings.analytics_projection_horizon_days}),
            # The funnel's window choices are the windows its rollups keep a column for.
            "funnel_windows": STORED_WINDOWS,
        },
    )
