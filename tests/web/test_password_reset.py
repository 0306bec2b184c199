"""« Mot de passe oublié ? »: the link by e-mail, its rules (single use, 30 minutes, hashed), the
password rules of the change form, sessions ended, no account disclosed, throttled like logins."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session, select

from portnet.models import PasswordResetToken, User, UserSession, utcnow
from portnet.security import hash_password
from tests.support.pages import PASSWORD, login, token_of
from web import password_reset
from web.app import create_app

LINK = re.compile(r"/mot-de-passe-oublie/([A-Za-z0-9_\-]+)")
NEW = "trois mots bleus du port"


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def outbox(monkeypatch: pytest.MonkeyPatch) -> list[EmailMessage]:
    sent: list[EmailMessage] = []

    async def capture(message: EmailMessage) -> None:
        sent.append(message)

    monkeypatch.setattr(password_reset, "send", capture)
    return sent


@pytest_asyncio.fixture
async def portal(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    app.state.clock = Clock()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def user(db: Session) -> Iterator[User]:
    row = User(
        username=f"reset{uuid.uuid4().hex[:8]}",
        password_hash=hash_password(PASSWORD),
        role="client",
        email=f"{uuid.uuid4().hex[:8]}@demo.portnet.ma",
        full_name="Compte de test",
    )
    db.add(row)
    db.commit()
    db.refresh(row)
    yield row


async def ask(portal: httpx.AsyncClient, identifier: str) -> httpx.Response:
    page = await portal.get("/mot-de-passe-oublie")
    assert page.status_code == 200 and "Mot de passe oublié" in page.text
    return await portal.post(
        "/mot-de-passe-oublie", data={"identifier": identifier, "csrf_token": token_of(page.text)}
    )


async def choose(
    portal: httpx.AsyncClient, token: str, new: str, confirm: str | None = None
) -> httpx.Response:
    page = await portal.get(f"/mot-de-passe-oublie/{token}")
    assert page.status_code == 200, page.headers.get("location")
    data = {"new_password": new, "confirm_password": new if confirm is None else confirm}
    return await portal.post(
        f"/mot-de-passe-oublie/{token}", data={**data, "csrf_token": token_of(page.text)}
    )


def link_of(message: EmailMessage) -> str:
    match = LINK.search(str(message.get_body(("plain",)).get_content()))  # type: ignore[union-attr]
    assert match, "no reset link in the mail"
    return match.group(1)


async def test_login_page_links_to_the_reset_and_the_access_request(portal: httpx.AsyncClient) -> None:
    page = await portal.get("/connexion")
    assert 'href="/nouveau-client">Nouveau client ?' in page.text
    assert 'href="/mot-de-passe-oublie">Mot de passe oublié ?' in page.text
    for shortcut in ("Portail Web", "Guide utilisateur", "Demande d'accès", "Centre de relation client"):
        assert shortcut in page.text.replace("&#39;", "'")


async def test_reset_by_username_then_by_email(
    portal: httpx.AsyncClient, user: User, outbox: list[EmailMessage], db: Session
) -> None:
    answer = await ask(portal, user.username)
    assert answer.status_code == 200 and password_reset.ANSWER.split(",")[0] in answer.text.replace(
        "&#39;", "'"
    )
    assert len(outbox) == 1 and outbox[0]["To"] == user.email
    token = link_of(outbox[0])
    stored = db.exec(select(PasswordResetToken).where(PasswordResetToken.user_id == user.id)).all()
    assert [r.token_hash for r in stored] == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in {r.token_hash for r in stored}

    await ask(portal, user.email.upper() if user.email else "")
    assert len(outbox) == 2 and outbox[1]["To"] == user.email


async def test_unknown_account_gets_the_same_answer_and_no_mail(
    portal: httpx.AsyncClient, user: User, outbox: list[EmailMessage]
) -> None:
    known = await ask(portal, user.username)
    unknown = await ask(portal, "personne-" + uuid.uuid4().hex[:6])
    unknown_mail = await ask(portal, "personne@nulle-part.ma")
    assert known.status_code == unknown.status_code == unknown_mail.status_code == 200
    strip = re.compile(r'name="csrf_token" value="[^"]+"')
    assert strip.sub("", known.text) == strip.sub("", unknown.text) == strip.sub("", unknown_mail.text)
    assert len(outbox) == 1


async def test_link_sets_the_password_once_and_ends_sessions(
    portal: httpx.AsyncClient, user: User, outbox: list[EmailMessage], db: Session
) -> None:
    async with httpx.AsyncClient(transport=portal._transport, base_url="http://portal") as other:  # type: ignore[attr-defined]
        assert (await login(other, user.username)).status_code == 303
    assert db.exec(select(UserSession).where(UserSession.user_id == user.id)).first() is not None
    await ask(portal, user.username)
    token = link_of(outbox[-1])

    weak = await choose(portal, token, "Portnet2026!!")
    assert weak.status_code == 422 and "mot du service" in weak.text
    mismatch = await choose(portal, token, NEW, NEW + "x")
    assert mismatch.status_code == 422 and "ne correspondent pas" in mismatch.text

    done = await choose(portal, token, NEW)
    assert done.status_code == 303 and done.headers["location"] == "/connexion"
    db.expire_all()
    assert db.exec(select(UserSession).where(UserSession.user_id == user.id)).first() is None
    assert (await login(portal, user.username, NEW)).status_code == 303

    again = await portal.get(f"/mot-de-passe-oublie/{token}")
    assert again.status_code == 303 and again.headers["location"] == "/mot-de-passe-oublie"


async def test_link_expires_after_30_minutes(
    portal: httpx.AsyncClient, user: User, outbox: list[EmailMessage]
) -> None:
    await ask(portal, user.username)
    token = link_of(outbox[-1])
    clock: Clock = portal.app.state.clock  # type: ignore[attr-defined]
    clock.now += timedelta(minutes=29)
    assert (await portal.get(f"/mot-de-passe-oublie/{token}")).status_code == 200
    clock.now += timedelta(minutes=2)
    expired = await portal.get(f"/mot-de-passe-oublie/{token}")
    assert expired.status_code == 303
    page = await portal.get("/mot-de-passe-oublie")
    assert "plus valable" in page.text
    forged = await portal.get("/mot-de-passe-oublie/" + "A" * 43)
    assert forged.status_code == 303


async def test_requests_are_throttled_without_locking_the_login(
    portal: httpx.AsyncClient, user: User, outbox: list[EmailMessage]
) -> None:
    answers = [await ask(portal, user.username) for _ in range(6)]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert answers[5].status_code == 429 and "Retry-After" in answers[5].headers
    assert "demandes de réinitialisation" in answers[5].text
    assert len(outbox) == 5
    assert (await login(portal, user.username)).status_code == 303
