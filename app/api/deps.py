"""Shared dependencies: the request's database session and the current user."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.config import Settings, get_settings
from app.db import get_sessionmaker
from app.errors import Forbidden, Unauthorized
from app.models.user import User
from app.services.auth import user_for_token
from app.web import csrf

SESSION_COOKIE = "shop_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def get_db() -> Iterator[Session]:
    """One session per request, committed once after the endpoint and before the response."""
    yield from unit_of_work(get_sessionmaker()())


def unit_of_work(session: Session) -> Iterator[Session]:
    """Yield the session; commit when the caller is done, roll back on any error."""
    try:
        yield session
        session.commit()
        for callback in session.info.pop("after_commit", []):
            callback()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def after_commit(session: Session, callback) -> None:
    """Run `callback` only once the request's transaction has committed (e.g. send an email)."""
    session.info.setdefault("after_commit", []).append(callback)


# scope="function": the commit runs before the response is sent, so a client never
# sees a 2xx for work that then failed to commit.
DB = Annotated[Session, Depends(get_db, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings)]


def request_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(SESSION_COOKIE) or None


# Declared (never auto-erroring) so OpenAPI lists both ways in; request_token reads them.
bearer_scheme = HTTPBearer(auto_error=False, description="The `access_token` from /auth/verify-code")
cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="The session cookie set at login")


def optional_user(
    request: Request,
    session: DB,
    settings: AppSettings,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    _cookie: Annotated[str | None, Security(cookie_scheme)],
) -> User | None:
    token = request_token(request)
    if token and bearer is None and request.method not in SAFE_METHODS:
        # The cookie rides along on requests other sites make the browser send: a
        # state change on cookie auth must come from this site or a configured origin.
        try:
            csrf.check_origin(request, settings.cors_origin_list)
        except csrf.CsrfError:
            raise Forbidden("Cross-site request refused; send it from this site or with a bearer token") from None
    return user_for_token(session, token) if token else None


def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise Unauthorized()
    return user


def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("Admin access required")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(admin_user)]
