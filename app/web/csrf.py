"""CSRF protection for the cookie-authenticated page forms (login, logout).

Signed double-submit: a random nonce lives in an HttpOnly cookie and every form
carries HMAC(SECRET_KEY, nonce). A cross-site page can neither read the cookie nor
compute the HMAC, and a cookie planted from a sibling subdomain is useless without
the matching signature. The Origin (or Referer) of a POST must also be this site.
"""

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request, Response

CSRF_COOKIE = "shop_csrf"
CSRF_FIELD = "csrf_token"


class CsrfError(Exception):
    """The form's token or origin does not belong to this site."""


def _sign(secret_key: str, nonce: str) -> str:
    return hmac.new(secret_key.encode(), f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()


def ensure_nonce(request: Request) -> tuple[str, bool]:
    """The browser's CSRF nonce, or a new one; the flag says whether it must be set."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if len(nonce) >= 32:
        return nonce, False
    return secrets.token_urlsafe(32), True


def form_token(secret_key: str, nonce: str) -> str:
    """The value a form sends back in its hidden `csrf_token` field."""
    return _sign(secret_key, nonce)


def set_nonce_cookie(response: Response, request: Request, nonce: str, secure: bool) -> None:
    response.set_cookie(
        CSRF_COOKIE, nonce, httponly=True, samesite="lax", secure=secure or request.url.scheme == "https", path="/"
    )


def check(request: Request, secret_key: str, submitted: str | None) -> None:
    """Raise CsrfError unless the POST comes from this site with a valid token."""
    check_origin(request)
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if not nonce or not submitted or not hmac.compare_digest(submitted, _sign(secret_key, nonce)):
        raise CsrfError("The form has expired or did not come from this site. Reload the page and try again.")


def check_origin(request: Request, allowed_origins: list[str] | None = None) -> None:
    """Raise CsrfError when the request's Origin (or Referer) is another site."""
    # Browsers send Origin on every form POST; Referer is the fallback for older ones.
    # Neither (a non-browser client) leaves the token as the guard.
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return
    own_host = request.headers.get("host", "")
    if source == "null" or urlsplit(source).netloc.lower() != own_host.lower():
        if source.rstrip("/") not in (allowed_origins or []):
            raise CsrfError("The form was sent from another site.")
