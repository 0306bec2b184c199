"""Login sessions and CSRF tokens.

The session cookie carries a random token; the database keeps only its SHA-256, so a leaked
database cannot be replayed as cookies, and logout really ends the session. HTML forms carry a CSRF
token bound to the session (HMAC of the session token); before login, a double-submit cookie.
The JSON API needs no token: its state-changing calls are refused from any other origin
(web/security.py) and it reads JSON bodies only with a JSON Content-Type.

A session ends 8 hours after login (``SESSION_MAX_AGE_SECONDS``) or after 30 minutes without a
request (``SESSION_IDLE_TIMEOUT_SECONDS``). In production the cookies carry the ``__Host-`` prefix:
the browser then only accepts them Secure, for Path=/ and without Domain, so no sibling sub-domain
can plant or overwrite them.

Time comes from ``app.state.clock`` when a test sets one (naive UTC, like the ledger).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from fastapi import Request, Response
from sqlalchemy import bindparam
from sqlmodel import Session, col, delete, select

from portnet.models import User, UserSession, utcnow
from portnet.settings import Settings, get_settings

SESSION_COOKIE = "pn_session"
PRELOGIN_COOKIE = "pn_csrf"
HOST_PREFIX = "__Host-"
# last_seen_at is written at most this often: idle timeout to the minute, not a write per request.
TOUCH_INTERVAL = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_settings(request: Request) -> Settings:
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return settings or get_settings()


def request_now(request: Request) -> datetime:
    """Now, in naive UTC: the app's clock if a test set one."""
    clock: Callable[[], datetime] | None = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else utcnow()


def session_cookie_name(settings: Settings) -> str:
    return HOST_PREFIX + SESSION_COOKIE if settings.is_production else SESSION_COOKIE


def prelogin_cookie_name(settings: Settings) -> str:
    return HOST_PREFIX + PRELOGIN_COOKIE if settings.is_production else PRELOGIN_COOKIE


def _secure(settings: Settings) -> bool:
    # A __Host- cookie without Secure is dropped by the browser, so production always sets it.
    return settings.session_cookie_secure or settings.is_production


def _set_cookie(
    response: Response,
    settings: Settings,
    name: str,
    value: str,
    samesite: Literal["lax", "strict"],
    max_age: int | None = None,
) -> None:
    # No domain: a __Host- cookie must have none, and the others are host-only too.
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite=samesite, secure=_secure(settings), path="/"
    )


def session_token(request: Request) -> str | None:
    return request.cookies.get(session_cookie_name(request_settings(request)))


def token_hash(token: str) -> str:
    return _digest(token)


def open_session(
    db: Session, user: User, settings: Settings, response: Response, now: datetime | None = None
) -> str:
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    now = now or utcnow()
    db.add(
        UserSession(
            token_hash=_digest(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=settings.session_max_age_seconds),
        )
    )
    idle_before = now - timedelta(seconds=settings.session_idle_timeout_seconds)
    db.exec(
        delete(UserSession).where(  # type: ignore[call-overload]
            (col(UserSession.expires_at) < now) | (col(UserSession.last_seen_at) < idle_before)
        )
    )
    db.commit()
    _set_cookie(
        response, settings, session_cookie_name(settings), token, "lax", settings.session_max_age_seconds
    )
    return token


def close_session(db: Session, request: Request, response: Response) -> None:
    settings = request_settings(request)
    token = session_token(request)
    if token:
        db.exec(delete(UserSession).where(col(UserSession.token_hash) == _digest(token)))  # type: ignore[call-overload]
        db.commit()
    response.delete_cookie(
        session_cookie_name(settings), path="/", secure=_secure(settings), httponly=True, samesite="lax"
    )


def revoke_other_sessions(db: Session, user: User, keep_token: str | None) -> int:
    """Ends every session of ``user`` but the one holding ``keep_token``; returns how many ended.

    After a password change, whoever logged in with the old password (a thief included) is out.
    """
    statement = delete(UserSession).where(col(UserSession.user_id) == user.id)
    if keep_token:
        statement = statement.where(col(UserSession.token_hash) != _digest(keep_token))
    result = db.exec(statement)  # type: ignore[call-overload]
    return int(result.rowcount or 0)


# The session and its user in one statement (every authenticated request runs it), built once so
# that SQLAlchemy's compiled-statement cache finds it without working out its key again.
_SESSION_AND_USER = (
    select(UserSession, User)
    .outerjoin(User, col(User.id) == col(UserSession.user_id))
    .where(col(UserSession.token_hash) == bindparam("token_hash"))
)


def user_of_request(db: Session, request: Request) -> User | None:
    """The session's user, or None once the session ended (logout, 8 h, 30 min idle, revoked)."""
    token = session_token(request)
    if not token:
        return None
    found = db.exec(_SESSION_AND_USER, params={"token_hash": _digest(token)}).first()  # type: ignore[call-overload]
    if found is None:
        return None
    row, user = found
    settings = request_settings(request)
    now = request_now(request)
    idle_limit = timedelta(seconds=settings.session_idle_timeout_seconds)
    if row.expires_at <= now or now - row.last_seen_at >= idle_limit:
        db.delete(row)
        db.commit()
        return None
    if user is None or not user.is_active:
        return None
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        row.last_seen_at = now
        db.add(row)
        db.commit()
    return user


def csrf_token(request: Request, settings: Settings) -> str:
    """The token forms embed: bound to the session, or to the pre-login cookie."""
    basis = (
        request.cookies.get(session_cookie_name(settings))
        or request.cookies.get(prelogin_cookie_name(settings))
        or ""
    )
    if not basis:
        basis = getattr(request.state, "new_prelogin", "")
    return hmac.new(settings.secret_key.encode(), f"csrf:{basis}".encode(), hashlib.sha256).hexdigest()


def ensure_prelogin_cookie(request: Request, response: Response, settings: Settings) -> None:
    if request.cookies.get(session_cookie_name(settings)):
        return
    if request.cookies.get(prelogin_cookie_name(settings)):
        return
    value = getattr(request.state, "new_prelogin", None) or secrets.token_urlsafe(24)
    request.state.new_prelogin = value
    _set_cookie(response, settings, prelogin_cookie_name(settings), value, "strict")


def csrf_valid(request: Request, settings: Settings, submitted: str | None) -> bool:
    if not submitted:
        return False
    return hmac.compare_digest(submitted, csrf_token(request, settings))
