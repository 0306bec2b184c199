"""Accounts: login throttling, the forced password change in the API, session revocation and expiry,
hash upgrades at login.

Time is the app's clock (``app.state.clock``), moved by the tests: no sleeps. Each client has its
own address (ASGITransport's ``client``) so per-address throttling is tested on purpose only.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlmodel import Session, select

from portnet import login_throttle
from portnet.localtime import to_local
from portnet.models import LoginThrottle, User, UserSession, utcnow
from portnet.security import hash_password, needs_rehash, verify_password
from portnet.settings import get_settings
from web.app import create_app
from web.sessions import SESSION_COOKIE

PASSWORD = "Portnet2026!"
NEW_PASSWORD = "Tigre bleu sous la pluie"
BAD = "Mauvais-Secret-987"
BAD_CREDENTIALS = "Nom d'utilisateur ou mot de passe incorrect."


class Clock:
    def __init__(self) -> None:
        # A fixed instant, away from midnight in Casablanca so "HH:MM" needs no date.
        self.now = datetime(2026, 11, 28, 9, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(database_url: str, clock: Clock) -> FastAPI:
    app = create_app()
    app.state.clock = clock
    return app


ClientFactory = Callable[..., httpx.AsyncClient]


@pytest_asyncio.fixture
async def client_from(app: FastAPI) -> AsyncIterator[ClientFactory]:
    """``client_from("198.51.100.7")``: a client calling from that address."""
    made: list[httpx.AsyncClient] = []

    def make(address: str | None = None) -> httpx.AsyncClient:
        address = address or f"198.51.100.{len(made) + 10}"
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://portal"
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
def make_user(db: Session) -> Callable[..., User]:
    def make(must_change: bool = False, password_hash: str | None = None) -> User:
        user = User(
            username=f"acct{uuid.uuid4().hex[:8]}",
            password_hash=password_hash or hash_password(PASSWORD),
            role="finance",
            must_change_password=must_change,
        )
        db.add(user)
        db.commit()
        return user

    return make


async def api_login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/session", json={"username": username, "password": password})


def casablanca(instant: datetime) -> str:
    """The "HH:MM" the portal shows for an instant, rounded up to the minute."""
    local = to_local(instant)
    if local.second or local.microsecond:
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return local.strftime("%H:%M")


def audit_events(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, Any]]]:
    return [
        (r.audit_event, r.audit_fields)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "portnet.audit"
    ]


# ------------------------------------------------------------------------------- throttling


async def test_five_failures_then_growing_waits_then_the_lock(
    client_from: ClientFactory, make_user: Callable[..., User], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portnet.audit")
    user = make_user()
    client = client_from()
    for _ in range(4):
        answer = await api_login(client, user.username, BAD)
        assert answer.status_code == 401 and answer.json()["detail"] == BAD_CREDENTIALS
        assert "retry-after" not in answer.headers

    fifth = await api_login(client, user.username, BAD)
    assert fifth.status_code == 401 and "retry-after" in fifth.headers
    one_minute = clock.now + timedelta(minutes=1)
    assert fifth.json()["detail"] == (
        f"{BAD_CREDENTIALS} Trop de tentatives de connexion infructueuses. "
        f"Réessayez à partir de {casablanca(one_minute)} (heure de Casablanca)."
    )

    # Even the right password is refused while the account waits, and it is not checked.
    refused = await api_login(client, user.username)
    assert refused.status_code == 429 and "pn_session" not in refused.cookies
    body = refused.json()
    assert body["code"] == "login_throttled"
    assert f"Réessayez à partir de {casablanca(one_minute)} (heure de Casablanca)" in body["detail"]
    assert refused.headers["retry-after"] == "60"

    clock.advance(seconds=61)
    sixth = await api_login(client, user.username, BAD)
    assert f"{casablanca(clock.now + timedelta(minutes=5))} (heure de Casablanca)" in sixth.json()["detail"]
    clock.advance(minutes=5, seconds=1)
    seventh = await api_login(client, user.username, BAD)
    assert "la connexion est bloquée pendant 15 minutes" in seventh.json()["detail"]
    lock_end = clock.now + timedelta(minutes=15)
    clock.advance(minutes=14, seconds=59)
    locked = await api_login(client, user.username)
    assert locked.status_code == 429
    assert locked.json()["detail"] == (
        "Trop de tentatives de connexion infructueuses : la connexion est bloquée pendant 15 minutes. "
        f"Réessayez à partir de {casablanca(lock_end)} (heure de Casablanca)."
    )
    assert locked.headers["retry-after"] == "1"

    clock.advance(seconds=2)
    assert (await api_login(client, user.username)).status_code == 200

    events = audit_events(caplog)
    names = [name for name, _ in events]
    assert names.count("login.failed") == 7
    assert names.count("login.throttled") == 3 and names.count("login.refused_throttled") == 2
    assert names[-1] == "login.succeeded"
    throttled = next(fields for name, fields in events if name == "login.throttled")
    assert throttled["account"] == user.username.casefold() and throttled["address"] == "198.51.100.10"
    assert all("Portnet2026!" not in repr(fields) and BAD not in repr(fields) for _, fields in events)


async def test_a_success_clears_the_account_failures(
    client_from: ClientFactory, make_user: Callable[..., User]
) -> None:
    user = make_user()
    for _ in range(4):
        await api_login(client_from(), user.username, BAD)
    assert (await api_login(client_from(), user.username)).status_code == 200
    for _ in range(4):  # from other addresses: only the account's count is at stake here
        assert (await api_login(client_from(), user.username, BAD)).json()["detail"] == BAD_CREDENTIALS


async def test_failures_are_forgotten_after_the_window(
    client_from: ClientFactory, make_user: Callable[..., User], clock: Clock
) -> None:
    user = make_user()
    client = client_from()
    for _ in range(4):
        await api_login(client, user.username, BAD)
    clock.advance(seconds=get_settings().login_failure_window_seconds + 1)
    assert (await api_login(client, user.username, BAD)).json()["detail"] == BAD_CREDENTIALS


async def test_the_lock_follows_the_account_from_any_address(
    client_from: ClientFactory, make_user: Callable[..., User]
) -> None:
    user = make_user()
    for n in range(5):
        await api_login(client_from(f"203.0.113.{n}"), user.username, BAD)
    elsewhere = await api_login(client_from("192.0.2.99"), user.username)
    assert elsewhere.status_code == 429


async def test_unknown_accounts_get_the_same_answers(
    client_from: ClientFactory, make_user: Callable[..., User], clock: Clock
) -> None:
    async def sequence(username: str) -> list[tuple[int, str, str | None]]:
        client = client_from()
        seen = []
        for password in [BAD] * 6:
            answer = await api_login(client, username, password)
            seen.append((answer.status_code, answer.json()["detail"], answer.headers.get("retry-after")))
        return seen

    known = await sequence(make_user().username)
    unknown = await sequence(f"nobody{uuid.uuid4().hex[:8]}")
    assert known == unknown
    assert [status for status, _, _ in known] == [401] * 5 + [429]


async def test_per_address_throttle_across_accounts(
    client_from: ClientFactory, make_user: Callable[..., User]
) -> None:
    attacker = client_from("198.51.100.66")
    for n in range(5):  # password spraying: one try per account
        answer = await api_login(attacker, f"victim{n}{uuid.uuid4().hex[:6]}", BAD)
        assert answer.status_code == 401
    user = make_user()
    blocked = await api_login(attacker, user.username)
    assert blocked.status_code == 429 and "Réessayez à partir de" in blocked.json()["detail"]
    assert (await api_login(client_from("198.51.100.67"), user.username)).status_code == 200


async def test_successful_logins_do_not_wear_down_the_address(
    client_from: ClientFactory, make_user: Callable[..., User]
) -> None:
    """A shared office address: good logins are given back, only failures count."""
    office = client_from("192.0.2.20")
    for n in range(4):
        await api_login(office, f"typo{n}{uuid.uuid4().hex[:6]}", BAD)
    for _ in range(3):
        assert (await api_login(office, make_user().username)).status_code == 200
    assert (await api_login(office, make_user().username)).status_code == 200


async def test_ipv6_clients_are_counted_by_their_64_network(
    client_from: ClientFactory, make_user: Callable[..., User]
) -> None:
    for n in range(5):
        await api_login(client_from(f"2001:db8:1:2::{n + 1:x}"), f"v6{n}{uuid.uuid4().hex[:6]}", BAD)
    user = make_user()
    assert (await api_login(client_from("2001:db8:1:2:ffff::1"), user.username)).status_code == 429
    assert (await api_login(client_from("2001:db8:1:3::1"), user.username)).status_code == 200


def test_a_burst_gets_no_more_guesses_than_the_limit(db: Session) -> None:
    """Attempts count before the password check: parallel requests cannot all pass the gate."""
    settings = get_settings()
    now = utcnow()
    name = f"burst{uuid.uuid4().hex[:8]}"
    attempts = [login_throttle.begin(db, settings, name, "192.0.2.77", now) for _ in range(10)]
    assert [a.allowed for a in attempts] == [True] * settings.login_max_failures + [False] * 5
    assert all(a.retry_at == now + timedelta(minutes=1) for a in attempts if not a.allowed)
    row = db.get(LoginThrottle, ("account", name))
    assert row is not None and row.failures == settings.login_max_failures


async def test_portal_form_is_throttled_too(
    client_from: ClientFactory, make_user: Callable[..., User], clock: Clock
) -> None:
    user = make_user()
    client = client_from()

    async def post(password: str) -> httpx.Response:
        page = await client.get("/connexion")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        return await client.post(
            "/connexion", data={"username": user.username, "password": password, "csrf_token": token.group(1)}
        )

    for _ in range(5):
        assert (await post(BAD)).status_code == 401
    page = await post(PASSWORD)
    assert page.status_code == 429 and page.headers["retry-after"] == "60"
    assert "Trop de tentatives de connexion infructueuses." in page.text
    assert f"Réessayez à partir de {casablanca(clock.now + timedelta(minutes=1))}" in page.text
    assert "pn_session" not in page.cookies
    clock.advance(minutes=1)
    assert (await post(PASSWORD)).status_code == 303


# -------------------------------------------------------------------- forced password change


async def test_api_refuses_everything_until_the_forced_change(
    client_from: ClientFactory, make_user: Callable[..., User]
) -> None:
    user = make_user(must_change=True)
    client = client_from()
    login = await api_login(client, user.username)
    assert login.status_code == 200 and login.json()["must_change_password"] is True
    for method, path in [
        ("GET", "/api/v1/session"),
        ("GET", "/api/v1/invoices"),
        ("GET", "/api/v1/emitters"),
        ("GET", "/api/v1/finance/payments"),
        ("GET", "/api/v1/marsa-maroc/terminals"),
        ("POST", "/api/v1/payments"),
    ]:
        answer = await client.request(method, path, json={} if method == "POST" else None)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["code"] == "password_change_required", path
    changed = await client.post(
        "/api/v1/session/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 204
    assert (await client.get("/api/v1/invoices")).status_code == 200
    assert (await client.get("/api/v1/session")).json()["must_change_password"] is False


async def test_logout_is_allowed_before_the_forced_change(
    client_from: ClientFactory, make_user: Callable[..., User]
) -> None:
    client = client_from()
    await api_login(client, make_user(must_change=True).username)
    assert (await client.delete("/api/v1/session")).status_code == 204
    assert (await client.get("/api/v1/invoices")).status_code == 401


async def test_portal_sends_a_forced_change_to_the_form(
    client_from: ClientFactory, make_user: Callable[..., User]
) -> None:
    client = client_from()
    await api_login(client, make_user(must_change=True).username)  # the same cookie serves the portal
    for path in ("/factures", "/finance/paiements", "/paiements/PN0001"):
        answer = await client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/mot-de-passe", path


# --------------------------------------------------------------------------- session revocation


async def test_api_password_change_ends_the_other_sessions(
    client_from: ClientFactory, make_user: Callable[..., User], db: Session
) -> None:
    user = make_user()
    mine, other, third = client_from(), client_from(), client_from()
    for client in (mine, other, third):
        assert (await api_login(client, user.username)).status_code == 200
    changed = await mine.post(
        "/api/v1/session/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 204
    assert (await mine.get("/api/v1/session")).status_code == 200
    assert (await other.get("/api/v1/session")).status_code == 401
    assert (await third.get("/api/v1/invoices")).status_code == 401
    assert len(db.exec(select(UserSession).where(UserSession.user_id == user.id)).all()) == 1


async def test_portal_password_change_ends_the_other_sessions(
    client_from: ClientFactory, make_user: Callable[..., User]
) -> None:
    user = make_user(must_change=True)
    portal, phone = client_from(), client_from()
    await api_login(phone, user.username)
    page = await portal.get("/connexion")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    await portal.post(
        "/connexion", data={"username": user.username, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    form = await portal.get("/mot-de-passe")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    done = await portal.post(
        "/mot-de-passe",
        data={
            "csrf_token": token.group(1),
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )
    assert done.status_code == 303 and done.headers["location"] == "/factures"
    assert (await portal.get("/factures")).status_code == 200
    assert (await phone.get("/api/v1/session")).status_code == 401


# ------------------------------------------------------------------------------ session expiry


async def test_idle_timeout(client_from: ClientFactory, make_user: Callable[..., User], clock: Clock) -> None:
    client = client_from()
    await api_login(client, make_user().username)
    for _ in range(3):  # active: each request within 30 minutes of the previous one
        clock.advance(minutes=29)
        assert (await client.get("/api/v1/session")).status_code == 200
    clock.advance(minutes=30)
    assert (await client.get("/api/v1/session")).status_code == 401
    clock.advance(seconds=1)
    assert (await client.get("/api/v1/session")).status_code == 401


async def test_absolute_lifetime_stays_eight_hours(
    client_from: ClientFactory, make_user: Callable[..., User], clock: Clock
) -> None:
    client = client_from()
    await api_login(client, make_user().username)
    for _ in range(23):  # a request every 20 minutes: 7 h 40
        clock.advance(minutes=20)
        assert (await client.get("/api/v1/session")).status_code == 200
    clock.advance(minutes=20)
    assert (await client.get("/api/v1/session")).status_code == 401


async def test_last_seen_is_written_at_most_once_a_minute(
    client_from: ClientFactory, make_user: Callable[..., User], clock: Clock, db: Session
) -> None:
    client = client_from()
    user = make_user()
    await api_login(client, user.username)
    opened = clock.now

    def last_seen() -> datetime:
        db.expire_all()
        row = db.exec(select(UserSession).where(UserSession.user_id == user.id)).one()
        return row.last_seen_at

    assert last_seen() == opened
    clock.advance(seconds=59)
    await client.get("/api/v1/session")
    assert last_seen() == opened
    clock.advance(seconds=2)
    await client.get("/api/v1/session")
    assert last_seen() == opened + timedelta(seconds=61)


def test_session_cookie_name_in_development() -> None:
    assert SESSION_COOKIE == "pn_session"


# ----------------------------------------------------------------------------- hash upgrades


async def test_login_upgrades_an_outdated_hash(
    client_from: ClientFactory, make_user: Callable[..., User], db: Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portnet.audit")
    weak = Argon2Hasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    user = make_user(password_hash=weak)
    assert needs_rehash(weak)
    assert (await api_login(client_from(), user.username)).status_code == 200
    db.refresh(user)
    assert user.password_hash != weak and not needs_rehash(user.password_hash)
    assert verify_password(PASSWORD, user.password_hash)
    assert ("password.rehashed", {"user": user.username}) in audit_events(caplog)
    current = user.password_hash
    assert (await api_login(client_from(), user.username)).status_code == 200
    db.refresh(user)
    assert user.password_hash == current  # an up-to-date hash is left alone


async def test_seeded_demo_accounts_still_log_in(client_from: ClientFactory) -> None:
    """The demo password predates the policy; existing passwords are not re-checked at login."""
    for username in ("sataa", "aska", "tmta", "finance", "admin"):
        assert (await api_login(client_from(), username)).status_code == 200, username
