"""Production mode: unsafe settings stop the portal and the worker; no sandbox; __Host- cookies.

The suite runs in development (tests/conftest.py); production is exercised with Settings built for
it, and once with the real command line (`PORTNET_ENV=production uvicorn web.app:create_app --factory`).
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from bench._common import free_port
from portnet.production import (
    MIN_SECRET_LENGTH,
    SECRET_SETTINGS,
    UnsafeProductionSettings,
    production_problems,
)
from portnet.settings import Settings
from web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Portnet2026!"
SECRET_VARIABLES = [s.variable for s in SECRET_SETTINGS if s.needed_when is None]
# The payload codec's key list is checked apart (its own format), after the secrets.
ALL_SECRET_VARIABLES = [*SECRET_VARIABLES, "TEMPORAL_PAYLOAD_KEYS"]
PAYLOAD_KEYS = "k1:" + base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(autouse=True)
def no_secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built here read the environment too: the suite's own SECRET_KEY must not leak in."""
    for secret in SECRET_SETTINGS:
        monkeypatch.delenv(secret.variable, raising=False)
    for name in ("SMTP_USERNAME", "SESSION_COOKIE_SECURE", "SANDBOX_ENABLED", "TEMPORAL_PAYLOAD_KEYS"):
        monkeypatch.delenv(name, raising=False)


def real_secrets(prefix: str = "") -> dict[str, str]:
    """A distinct random-looking value of 48 characters for every secret production needs."""
    secrets = {s.name: f"{prefix}{s.name}-".ljust(48, "x") for s in SECRET_SETTINGS}
    return {**secrets, "temporal_payload_keys": PAYLOAD_KEYS}


def production(**overrides: Any) -> Settings:
    return Settings.model_validate({"portnet_env": "production", **real_secrets(), **overrides})


# ------------------------------------------------------------------------------- the rules


def test_production_is_the_default_and_development_is_explicit() -> None:
    assert Settings.model_fields["portnet_env"].default == "production"
    assert os.environ["PORTNET_ENV"] == "development"  # tests/conftest.py


def test_defaults_are_refused_naming_every_variable_at_once() -> None:
    problems = production_problems(Settings.model_validate({"portnet_env": "production"}))
    named = [p.split(" ", 1)[0] for p in problems]
    assert named == ALL_SECRET_VARIABLES
    assert all("public development default" in p for p in problems[:-1])
    assert "absent" in problems[-1]


def test_safe_settings_are_accepted() -> None:
    settings = production()
    assert production_problems(settings) == []
    assert settings.session_cookie_secure is True and settings.sandbox_enabled is False


def test_short_secret_is_refused() -> None:
    problems = production_problems(production(secret_key="k" * (MIN_SECRET_LENGTH - 1)))
    assert problems == [f"SECRET_KEY : moins de {MIN_SECRET_LENGTH} caractères / shorter than 32 characters"]
    assert production_problems(production(secret_key="k" * MIN_SECRET_LENGTH)) == []


def test_empty_secret_is_refused() -> None:
    assert production_problems(production(fatourati_api_key="  ")) == ["FATOURATI_API_KEY : absent / not set"]


def test_smtp_password_only_matters_with_an_smtp_user() -> None:
    assert production_problems(production(smtp_password="")) == []
    problems = production_problems(production(smtp_username="relay", smtp_password="short"))
    assert [p.split(" ", 1)[0] for p in problems] == ["SMTP_PASSWORD"]


def test_insecure_cookies_and_sandboxes_are_refused_when_asked_for() -> None:
    problems = production_problems(production(session_cookie_secure=False, sandbox_enabled=True))
    assert [p.split(" ", 1)[0] for p in problems] == ["SESSION_COOKIE_SECURE", "SANDBOX_ENABLED"]


def test_environment_decides_the_defaults_of_cookies_and_sandboxes() -> None:
    dev = Settings.model_validate({"portnet_env": "development"})
    assert (dev.session_cookie_secure, dev.sandbox_enabled) == (False, True)
    prod = Settings.model_validate({"portnet_env": "production"})
    assert (prod.session_cookie_secure, prod.sandbox_enabled) == (True, False)
    assert (
        Settings.model_validate({"portnet_env": "development", "sandbox_enabled": False}).sandbox_enabled
        is False
    )


def test_development_accepts_its_defaults() -> None:
    assert production_problems(Settings.model_validate({"portnet_env": "development"})) == []


def test_create_app_refuses_and_says_what_to_set() -> None:
    with pytest.raises(UnsafeProductionSettings) as refused:
        create_app(Settings.model_validate({"portnet_env": "production"}))
    assert refused.value.code is not None and "SECRET_KEY" in str(refused.value.code)
    for variable in ALL_SECRET_VARIABLES:
        assert variable in str(refused.value.code)


def test_worker_refuses_before_connecting_to_temporal(database_url: str) -> None:
    env = {**_clean_environment(database_url), "TEMPORAL_ADDRESS": "127.0.0.1:9"}  # must never be reached
    result = subprocess.run(
        [sys.executable, "worker.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    for variable in ALL_SECRET_VARIABLES:
        assert variable in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "127.0.0.1:9" not in result.stderr


# -------------------------------------------------------------------- a production portal


@pytest_asyncio.fixture
async def portal(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(production(database_url=database_url))
    assert not hasattr(app.state, "sandbox")
    # Secure cookies travel over https only: the client speaks https to the app.
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="https://portal") as client:
            yield client


async def test_production_mounts_no_sandbox(portal: httpx.AsyncClient) -> None:
    for path in ("/sandbox/", "/sandbox/cmi/", "/sandbox/mail"):
        assert (await portal.get(path)).status_code == 404, path


async def test_cookies_carry_the_host_prefix(portal: httpx.AsyncClient) -> None:
    page = await portal.get("/connexion")
    prelogin = page.headers["set-cookie"]
    assert prelogin.startswith("__Host-pn_csrf=")
    assert "secure" in prelogin.lower() and "path=/" in prelogin.lower() and "domain" not in prelogin.lower()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    response = await portal.post(
        "/connexion", data={"username": "sataa", "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert response.status_code == 303, response.text
    session_cookie = next(c for c in response.headers.get_list("set-cookie") if "pn_session" in c)
    assert session_cookie.startswith("__Host-pn_session=")
    assert "secure" in session_cookie.lower() and "domain" not in session_cookie.lower()
    assert (await portal.get("/factures")).status_code == 200
    api = await portal.post("/api/v1/session", json={"username": "aska", "password": PASSWORD})
    assert api.status_code == 200 and api.headers["set-cookie"].startswith("__Host-pn_session=")


async def test_a_plain_cookie_name_is_not_a_session_in_production(portal: httpx.AsyncClient) -> None:
    login = await portal.post("/api/v1/session", json={"username": "sataa", "password": PASSWORD})
    token = login.cookies["__Host-pn_session"]
    portal.cookies.clear()
    portal.cookies.set("pn_session", token)
    assert (await portal.get("/api/v1/invoices")).status_code == 401


# ------------------------------------------------------------------ the real command line


def _uvicorn(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "web.app:create_app", "--factory", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _clean_environment(database_url: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**keep, "PORTNET_ENV": "production", "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}


def test_uvicorn_with_defaults_exits_naming_each_variable(database_url: str) -> None:
    process = _uvicorn(_clean_environment(database_url), free_port())
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    for variable in ALL_SECRET_VARIABLES:
        assert variable in output, output
    assert "Traceback" not in output


def test_uvicorn_with_every_secret_starts_without_sandbox(database_url: str) -> None:
    env = _clean_environment(database_url)
    env.update({name.upper(): value for name, value in real_secrets("cli-").items()})
    env["TEMPORAL_ADDRESS"] = "127.0.0.1:9"  # the portal starts without Temporal (/readyz says so)
    port = free_port()
    process = _uvicorn(env, port)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/sandbox/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the portal did not start"
                time.sleep(0.2)
        assert answer.status_code == 404
        login_page = httpx.get(f"http://127.0.0.1:{port}/connexion", timeout=5)
        assert login_page.status_code == 200
        assert login_page.headers["set-cookie"].startswith("__Host-pn_csrf=")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
