"""Passwordless login by one-time email code."""

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from app.api.deps import DB, SESSION_COOKIE, AppSettings, CurrentUser, after_commit, request_token
from app.api.responses import error_responses
from app.config import Settings
from app.errors import TooManyRequests
from app.schemas.auth import MessageOut, RequestCodeIn, TokenOut, UserOut, VerifyCodeIn
from app.services import auth as auth_service
from app.services.email import send_email

router = APIRouter(prefix="/auth", tags=["auth"])

CODE_SENT = "If the address can receive email, a login code is on its way."


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/request-code", status_code=status.HTTP_202_ACCEPTED, response_model=MessageOut, responses=error_responses(400, 413, 422, 429))
def request_code(body: RequestCodeIn, request: Request, session: DB, settings: AppSettings) -> MessageOut:
    """Email a 6-digit login code; creates the account (and its signup event) on first use."""
    user, code = auth_service.request_code(session, settings, body.email, client_ip(request))
    after_commit(session, lambda: send_login_code(settings, user.email, code))
    return MessageOut(detail=CODE_SENT)


def send_login_code(settings: Settings, email: str, code: str) -> None:
    """The login-code email (the API and the login page send the same one)."""
    minutes = settings.login_code_ttl_seconds // 60
    send_email(
        settings,
        to=email,
        subject=f"Your login code: {code}",
        body=f"Your eSIM shop login code is {code}.\n\nIt is valid for {minutes} minutes and works once.\n",
    )


@router.post("/verify-code", response_model=TokenOut, responses=error_responses(400, 413, 422, 429))
def verify_code(body: VerifyCodeIn, request: Request, response: Response, session: DB, settings: AppSettings):
    """Exchange a valid code for a session token (also set as an HttpOnly cookie)."""
    result = auth_service.verify_code(session, settings, body.email, body.code.strip(), client_ip(request))
    if result.too_many:
        raise TooManyRequests(result.error, retry_after=settings.login_code_ttl_seconds)
    if result.error:
        # Not raised: the failed attempt must be committed to count toward the limit.
        return JSONResponse(status_code=400, content={"detail": result.error})
    set_session_cookie(response, request, settings, result.token)
    return TokenOut(access_token=result.token, user=UserOut.model_validate(result.user, from_attributes=True))


def set_session_cookie(response: Response, request: Request, settings: Settings, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_days * 86400,
        httponly=True,
        samesite="lax",
        secure=settings.is_production or request.url.scheme == "https",
        path="/",
    )


@router.get("/me", response_model=UserOut, responses=error_responses(401))
def me(user: CurrentUser) -> UserOut:
    """The logged-in user."""
    return UserOut.model_validate(user, from_attributes=True)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(401))
def logout(request: Request, user: CurrentUser, session: DB) -> Response:
    """End this session: the token stops working and the cookie is cleared."""
    auth_service.revoke_token(session, request_token(request))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
