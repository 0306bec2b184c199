"""« Mot de passe oublié ? »: a reset link by e-mail, single use, valid 30 minutes.

The user gives a username or an e-mail address. The answer is the same sentence whether an account
matches or not, and the lookup and the mail happen after the answer has gone (a background task), so
neither its text nor its timing tells which accounts exist. Requests are throttled with the login's
rules and table (portnet/login_throttle.py, under scopes of their own so that asking for links
never locks anybody's login): per identifier as typed and per client address.

The mail goes out from the portal, not through a workflow: it moves no money and changes no payment
state, a lost one is simply asked for again, and a person waits for it; aiosmtplib sends it without
blocking the event loop (activities/mail.py's ``send``, same SMTP settings as every other mail),
the ledger work runs in a thread.

Only the SHA-256 of the link's token is stored. Using a link is one conditional UPDATE (unused and
not expired), so two submissions of one link cannot both succeed. The new password follows the
password change's rules (portnet.security.password_problems); a reset ends every session of the
user and every other link they still had.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from activities.mail import send
from portnet import login_throttle
from portnet.audit import audit
from portnet.db import session_scope
from portnet.i18n import N_
from portnet.localtime import to_local
from portnet.models import PasswordResetToken, User, utcnow
from portnet.security import hash_password, password_problems
from portnet.settings import Settings
from web.login import throttled_message
from web.sessions import revoke_other_sessions

RESET_TTL = timedelta(minutes=30)
THROTTLE_KIND = "reset-"
RESET_PATH = "/mot-de-passe-oublie"
IDENTIFIER_LIMIT = 254
# At most this many accounts share an e-mail address and get a link each.
MAX_ACCOUNTS_PER_EMAIL = 5
ANSWER = N_(
    "Si un compte correspond à ces informations, un e-mail contenant un lien de réinitialisation vient "
    "de lui être envoyé. Le lien est valable 30 minutes et ne sert qu'une fois."
)
INVALID_LINK = N_(
    "Ce lien de réinitialisation n'est plus valable (déjà utilisé, expiré ou incomplet). "
    "Demandez-en un nouveau."
)

log = logging.getLogger("portnet.web.password_reset")
_table = PasswordResetToken.__table__  # type: ignore[attr-defined]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class RequestOutcome:
    """``allowed`` False when throttled: then ``message`` says until when (Casablanca time)."""

    allowed: bool
    message: str = ANSWER
    retry_at: datetime | None = None


def throttle_request(
    db: Session, settings: Settings, identifier: str, address: str | None, now: datetime
) -> RequestOutcome:
    """Every request counts like a failed login of its own kind; past the limit it waits like one."""
    attempt = login_throttle.begin(db, settings, identifier, address, now, kind=THROTTLE_KIND)
    if not attempt.allowed:
        assert attempt.retry_at is not None
        audit(
            "password_reset.refused_throttled",
            level=logging.WARNING,
            account=attempt.account,
            address=attempt.address,
            until=attempt.retry_at.isoformat(),
        )
        text = throttled_message(
            attempt.retry_at,
            now,
            attempt.full_lock,
            settings,
            attempts=N_("demandes de réinitialisation"),
            blocked=N_("les demandes sont bloquées"),
        )
        return RequestOutcome(False, text, attempt.retry_at)
    login_throttle.failed(db, settings, attempt, now)
    audit("password_reset.requested", account=attempt.account, address=attempt.address)
    return RequestOutcome(True)


def matching_users(db: Session, identifier: str) -> list[User]:
    """The active accounts named so, or else those with this e-mail address (case-insensitive)."""
    wanted = identifier.strip()
    if not wanted:
        return []
    user = db.exec(select(User).where(User.username == wanted)).first()
    if user is not None:
        return [user] if user.is_active and user.email else []
    if "@" not in wanted:
        return []
    users = db.exec(
        select(User)
        .where(func.lower(col(User.email)) == wanted.casefold(), col(User.is_active).is_(True))
        .order_by(col(User.id))
        .limit(MAX_ACCOUNTS_PER_EMAIL)
    ).all()
    return list(users)


def issue_link(db: Session, user: User, now: datetime) -> str:
    """A new token for ``user``; returns the token (only its hash is stored)."""
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    db.add(
        PasswordResetToken(
            token_hash=token_digest(token), user_id=user.id, created_at=now, expires_at=now + RESET_TTL
        )
    )
    db.execute(sa.delete(_table).where(_table.c.expires_at < now - timedelta(days=1)))
    db.commit()
    return token


def compose_reset_mail(settings: Settings, user: User, token: str, expires_at: datetime) -> EmailMessage:
    link = f"{settings.public_base_url.rstrip('/')}{RESET_PATH}/{token}"
    until = to_local(expires_at).strftime("%H:%M")
    message = EmailMessage()
    message["Subject"] = N_("PortNet — réinitialisation de votre mot de passe")
    message["From"] = settings.mail_from
    message["To"] = str(user.email)
    message["Date"] = format_datetime(to_local(utcnow()))
    message["Message-ID"] = make_msgid(domain="portnet.ma")
    message.set_content(
        f"Bonjour {user.full_name or user.username},\n\n"
        f"Une réinitialisation du mot de passe du compte « {user.username} » a été demandée sur le "
        "Guichet Unique PortNet.\n\n"
        f"Pour choisir un nouveau mot de passe, ouvrez ce lien avant {until} (heure de Casablanca) :\n"
        f"{link}\n\n"
        "Le lien est valable 30 minutes et ne sert qu'une fois. Toutes les sessions ouvertes avec votre "
        "compte seront fermées.\n\n"
        "Si vous n'êtes pas à l'origine de cette demande, ignorez cet e-mail : votre mot de passe reste "
        "inchangé.\n\n"
        "HelpDesk PortNet : 0520473100\n"
    )
    return message


def _prepare_mails(settings: Settings, identifier: str, now: datetime) -> list[tuple[str, EmailMessage]]:
    with session_scope() as db:
        users = matching_users(db, identifier)
        if not users:
            audit("password_reset.no_account", account=login_throttle.account_key(identifier))
            return []
        mails = []
        for user in users:
            token = issue_link(db, user, now)
            mails.append((user.username, compose_reset_mail(settings, user, token, now + RESET_TTL)))
        return mails


async def send_reset_mails(settings: Settings, identifier: str, now: datetime) -> None:
    """Runs after the answer went out: looks the account up, stores the link, sends the mail."""
    try:
        mails = await asyncio.to_thread(_prepare_mails, settings, identifier, now)
        for username, message in mails:
            await send(message)
            audit("password_reset.mailed", user=username)
    except Exception:  # noqa: BLE001 - the user was already answered; they may ask again
        log.exception("password reset mail not sent")


def valid_link(db: Session, token: str, now: datetime) -> PasswordResetToken | None:
    if not token or len(token) > 100:
        return None
    row = db.get(PasswordResetToken, token_digest(token))
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def reset_password(db: Session, token: str, new: str, confirm: str, now: datetime) -> list[str] | None:
    """None when the link is not (or no longer) valid; else the problems, empty once the password is set."""
    row = valid_link(db, token, now)
    if row is None:
        return None
    user = db.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    if new != confirm:
        return [N_("Les mots de passe ne correspondent pas.")]
    problems = password_problems(new, user.username)
    if problems:
        return problems
    taken = db.execute(
        sa.update(_table)
        .where(
            _table.c.token_hash == row.token_hash,
            _table.c.used_at.is_(None),
            _table.c.expires_at > now,
        )
        .values(used_at=now)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        db.rollback()
        return None
    user.password_hash = hash_password(new)
    user.must_change_password = False
    db.add(user)
    db.execute(sa.delete(_table).where(_table.c.user_id == user.id, _table.c.token_hash != row.token_hash))
    ended = revoke_other_sessions(db, user, None)
    db.commit()
    audit("password_reset.completed", user=user.username, sessions_ended=ended)
    return []
