"""Login sessions and CSRF tokens.

The session cookie carries a random token; the database keeps only its SHA-256, so a leaked
database cannot be replayed as cookies, and logout really ends the session. HTML forms carry a CSRF
token bound to the session (HMAC of the session token); before login, a double-submit cookie.
The JSON API needs no token: its state-changing calls are refused from any other origin
(web/security.py) and it reads JSON bodies only with a JSON Content-Type.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from fastapi import Request, Response
from sqlmodel import Session, col, delete

from portnet.models import User, UserSession, utcnow
from portnet.settings import Settings

SESSION_COOKIE = "pn_session"
PRELOGIN_COOKIE = "pn_csrf"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(db: Session, user: User, settings: Settings, response: Response) -> str:
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(
        UserSession(
            token_hash=_digest(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.session_max_age_seconds),
        )
    )
    db.exec(delete(UserSession).where(col(UserSession.expires_at) < now))  # type: ignore[call-overload]
    db.commit()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.session_cookie_secure,
        path="/",
    )
    return token


def close_session(db: Session, request: Request, response: Response) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        db.exec(delete(UserSession).where(col(UserSession.token_hash) == _digest(token)))  # type: ignore[call-overload]
        db.commit()
    response.delete_cookie(SESSION_COOKIE, path="/")


def user_of_request(db: Session, request: Request) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    row = db.get(UserSession, _digest(token))
    if row is None or row.expires_at < utcnow():
        return None
    user = db.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    return user


def csrf_token(request: Request, settings: Settings) -> str:
    """The token forms embed: bound to the session, or to the pre-login cookie."""
    basis = request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRELOGIN_COOKIE) or ""
    if not basis:
        basis = getattr(request.state, "new_prelogin", "")
    return hmac.new(settings.secret_key.encode(), f"csrf:{basis}".encode(), hashlib.sha256).hexdigest()


def ensure_prelogin_cookie(request: Request, response: Response, settings: Settings) -> None:
    if request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRELOGIN_COOKIE):
        return
    value = getattr(request.state, "new_prelogin", None) or secrets.token_urlsafe(24)
    request.state.new_prelogin = value
    response.set_cookie(
        PRELOGIN_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=settings.session_cookie_secure,
        path="/",
    )


def csrf_valid(request: Request, settings: Settings, submitted: str | None) -> bool:
    if not submitted:
        return False
    return hmac.compare_digest(submitted, csrf_token(request, settings))
