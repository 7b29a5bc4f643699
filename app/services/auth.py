"""Passwordless login: one-time email codes, sessions and rate limits."""

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import utc_now
from app.errors import TooManyRequests
from app.models.analytics import EventType
from app.models.user import AuthSession, LoginCode, RateLimitCounter, User
from app.services import sqlcompat
from app.services.analytics import record_event
from app.services.funnel_store import mark_verified

RATE_WINDOW = dt.timedelta(hours=1)
RATE_KEY_MAX = RateLimitCounter.__table__.c.key.type.length


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _code_hash(settings: Settings, user_id: int, code: str) -> str:
    return hmac.new(settings.secret_key.encode(), f"{user_id}:{code}".encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a plain digest is enough to keep the table useless to a reader.
    return hashlib.sha256(token.encode()).hexdigest()


def hit_rate_limit(session: Session, scope: str, key: str, limit: int, *, now: dt.datetime) -> None:
    """Count one hit in the current hourly window; 429 once the window holds `limit` hits."""
    window_start = now.replace(minute=0, second=0, microsecond=0)
    if len(key) > RATE_KEY_MAX:
        # An email may be 254 characters, the key column holds 128: long keys are stored as a digest.
        key = hashlib.sha256(key.encode()).hexdigest()
    sqlcompat.add_counts(
        session,
        RateLimitCounter.__table__,
        {"scope": scope, "key": key, "window_start": window_start},
        {"hits": 1},
    )
    hits = session.scalar(
        select(RateLimitCounter.hits).where(
            RateLimitCounter.scope == scope,
            RateLimitCounter.key == key,
            RateLimitCounter.window_start == window_start,
        )
    )
    if hits > limit:
        retry_after = int((window_start + RATE_WINDOW - now).total_seconds()) + 1
        raise TooManyRequests(f"Too many requests; try again in {retry_after} seconds", retry_after)


def get_or_create_user(session: Session, email: str, *, settings: Settings, now: dt.datetime) -> User:
    """The user of this email, created (with its `user_signup` event) on first sight."""
    user = session.scalar(select(User).where(User.email == email))
    if user is not None:
        return user
    try:
        with session.begin_nested():
            user = User(email=email, is_admin=email in settings.admin_email_set, created_at=now)
            session.add(user)
            session.flush()
            record_event(session, EventType.USER_SIGNUP, user_id=user.id, occurred_at=now, metadata={"source": "otp_request"})
    except IntegrityError:
        # Another request created this user a moment ago; its transaction recorded the signup.
        user = session.scalar(select(User).where(User.email == email))
    return user


def request_code(session: Session, settings: Settings, email: str, client_ip: str, *, now: dt.datetime | None = None) -> tuple[User, str]:
    """Create the user if new and replace its login code; returns the plain code to send."""
    now = now or utc_now()
    hit_rate_limit(session, "code_email", email, settings.rate_limit_email_per_hour, now=now)
    hit_rate_limit(session, "code_ip", client_ip, settings.rate_limit_ip_per_hour, now=now)
    user = get_or_create_user(session, email, settings=settings, now=now)
    code = f"{secrets.randbelow(10**6):06d}"
    session.execute(delete(LoginCode).where(LoginCode.user_id == user.id))
    session.add(
        LoginCode(
            user_id=user.id,
            code_hash=_code_hash(settings, user.id, code),
            attempts=0,
            expires_at=now + dt.timedelta(seconds=settings.login_code_ttl_seconds),
            created_at=now,
        )
    )
    session.flush()
    return user, code


@dataclass
class VerifyResult:
    user: User | None = None
    token: str | None = None
    error: str | None = None
    too_many: bool = False


def verify_code(
    session: Session, settings: Settings, email: str, code: str, client_ip: str, *, now: dt.datetime | None = None
) -> VerifyResult:
    """Check a code (429 past the per-IP limit); on success consume it (once, even under racing requests) and open a session."""
    now = now or utc_now()
    hit_rate_limit(session, "verify_ip", client_ip, settings.rate_limit_verify_ip_per_hour, now=now)
    invalid = VerifyResult(error="Invalid or expired code")
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        return invalid
    login_code = session.scalar(select(LoginCode).where(LoginCode.user_id == user.id))
    if login_code is None or login_code.expires_at <= now:
        return invalid
    if login_code.attempts >= settings.login_code_max_attempts:
        return VerifyResult(error="Too many attempts; request a new code", too_many=True)
    expected = login_code.code_hash
    if not hmac.compare_digest(expected, _code_hash(settings, user.id, code)):
        session.execute(
            update(LoginCode).where(LoginCode.id == login_code.id).values(attempts=LoginCode.attempts + 1)
        )
        return invalid
    consumed = session.execute(
        delete(LoginCode).where(
            LoginCode.id == login_code.id,
            LoginCode.code_hash == expected,
            LoginCode.attempts < settings.login_code_max_attempts,
        )
    )
    if consumed.rowcount != 1:
        return invalid  # a simultaneous verification used it first
    if user.email in settings.admin_email_set and not user.is_admin:
        user.is_admin = True
    mark_verified(session, user, now)
    token = secrets.token_urlsafe(32)
    session.add(
        AuthSession(
            user_id=user.id,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + dt.timedelta(days=settings.session_ttl_days),
        )
    )
    session.flush()
    return VerifyResult(user=user, token=token)


def user_for_token(session: Session, token: str, *, now: dt.datetime | None = None) -> User | None:
    now = now or utc_now()
    return session.scalar(
        select(User)
        .join(AuthSession, AuthSession.user_id == User.id)
        .where(
            AuthSession.token_hash == token_hash(token),
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
    )


def revoke_token(session: Session, token: str, *, now: dt.datetime | None = None) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == token_hash(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=now or utc_now())
    )


def set_admin(session: Session, email: str, is_admin: bool) -> User | None:
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is not None:
        user.is_admin = is_admin
    return user
