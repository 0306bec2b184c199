"""One login attempt, the same for the portal form and the JSON API.

Throttle first (portnet/login_throttle.py: refused attempts never reach the password check), then
the password, then the bookkeeping: the throttle learns the outcome, an outdated hash is upgraded
while the plain password is at hand, and every step leaves an audit line.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from portnet import login_throttle, metrics
from portnet.audit import audit
from portnet.i18n import N_
from portnet.localtime import to_local
from portnet.models import User
from portnet.security import hash_password, needs_rehash, verify_password
from portnet.settings import Settings

BAD_CREDENTIALS = N_("Nom d'utilisateur ou mot de passe incorrect.")

_DUMMY_HASH = hash_password("not-a-real-password-0")


def authenticate(db: Session, username: str, password: str) -> User | None:
    user = db.exec(select(User).where(User.username == username.strip())).first()
    if user is None or not user.is_active:
        # Same work as a real check, so timing does not reveal which usernames exist.
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, user.password_hash):
        return None
    return user


def retry_text(retry_at: datetime, now: datetime) -> str:
    """ "14:32" in Casablanca time (with the day if it is not today there), rounded up to the minute."""
    local = to_local(retry_at)
    if local.second or local.microsecond:
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if local.date() != to_local(now).date():
        return local.strftime("%d/%m/%Y à %H:%M")
    return local.strftime("%H:%M")


def throttled_message(
    retry_at: datetime,
    now: datetime,
    full_lock: bool,
    settings: Settings,
    attempts: str = N_("tentatives de connexion infructueuses"),
    blocked: str = N_("la connexion est bloquée"),
) -> str:
    """The wait in French; ``attempts``/``blocked`` name what is throttled (the password reset reuses it)."""
    when = retry_text(retry_at, now)
    if full_lock:
        minutes = max(1, settings.login_lock_seconds // 60)
        return (
            f"Trop de {attempts} : {blocked} pendant {minutes} "
            f"minutes. Réessayez à partir de {when} (heure de Casablanca)."
        )
    return f"Trop de {attempts}. Réessayez à partir de {when} (heure de Casablanca)."


@dataclass
class LoginOutcome:
    """``user`` on success; otherwise ``message`` (French), and ``retry_at`` when the caller must wait."""

    user: User | None
    message: str | None = None
    retry_at: datetime | None = None
    throttled: bool = False

    def retry_at_iso(self) -> str | None:
        return self.retry_at.isoformat() + "Z" if self.retry_at is not None else None

    def retry_after_seconds(self, now: datetime) -> int | None:
        if self.retry_at is None:
            return None
        return max(1, math.ceil((self.retry_at - now).total_seconds()))


def attempt_login(
    db: Session, settings: Settings, username: str, password: str, address: str | None, now: datetime
) -> LoginOutcome:
    attempt = login_throttle.begin(db, settings, username, address, now)
    account, address = attempt.account, attempt.address
    if not attempt.allowed:
        assert attempt.retry_at is not None
        metrics.login_lock("refused")
        audit(
            "login.refused_throttled",
            level=logging.WARNING,
            account=account,
            address=address,
            until=attempt.retry_at.isoformat(),
        )
        return LoginOutcome(
            None,
            throttled_message(attempt.retry_at, now, attempt.full_lock, settings),
            attempt.retry_at,
            throttled=True,
        )

    user = authenticate(db, username, password)
    if user is None:
        login_throttle.failed(db, settings, attempt, now)
        metrics.login_failure()
        audit("login.failed", account=account, address=address, failures=attempt.account_failures)
        wait_until = attempt.wait_until
        if wait_until is None:
            return LoginOutcome(None, BAD_CREDENTIALS)
        full_lock = any(login_throttle.is_full_lock(r.failures, settings) for r in attempt.reservations)
        metrics.login_lock("lock" if full_lock else "wait")
        audit(
            "login.throttled",
            level=logging.WARNING,
            account=account,
            address=address,
            until=wait_until.isoformat(),
            full_lock=full_lock,
        )
        return LoginOutcome(
            None,
            f"{BAD_CREDENTIALS} {throttled_message(wait_until, now, full_lock, settings)}",
            wait_until,
        )

    login_throttle.succeeded(db, attempt)
    if needs_rehash(user.password_hash):
        # The stored hash predates the current argon2 parameters: the password is only known now.
        user.password_hash = hash_password(password)
        db.add(user)
        db.commit()
        audit("password.rehashed", user=user.username)
    audit("login.succeeded", user=user.username, address=address)
    return LoginOutcome(user)
