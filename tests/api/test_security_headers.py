"""Security headers on every answer: HTML, JSON, PDF, redirects, errors (500 included), static files."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from portnet.settings import Settings
from tests.support.pages import NoTemporal
from web.app import create_app
from web.security import SecurityHeaders


@pytest_asyncio.fixture
async def app(database_url: str) -> FastAPI:
    app = create_app()
    app.state.temporal = NoTemporal()

    @app.get("/api/v1/test-failure", include_in_schema=False)
    def failure() -> None:
        raise RuntimeError("a bug")

    @app.get("/page-en-panne", include_in_schema=False)
    def page_failure() -> None:
        raise RuntimeError("a bug")

    return app


@pytest_asyncio.fixture
async def web(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
        yield client


async def login(web: httpx.AsyncClient, username: str = "sataa") -> None:
    response = await web.post("/api/v1/session", json={"username": username, "password": "Portnet2026!"})
    assert response.status_code == 200


def assert_common(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", response.request.url
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in headers  # development


async def test_every_kind_of_answer_without_a_session(web: httpx.AsyncClient) -> None:
    page = await web.get("/connexion")
    redirect = await web.get("/")
    missing_page = await web.get("/nulle-part")
    api_refusal = await web.get("/api/v1/invoices")
    api_missing = await web.get("/api/v1/nulle-part")
    static = await web.get("/static/portal.css")
    docs = await web.get("/openapi.json")
    assert (page.status_code, redirect.status_code, missing_page.status_code) == (200, 303, 404)
    assert (api_refusal.status_code, api_missing.status_code, static.status_code) == (401, 404, 200)
    for response in (page, redirect, missing_page, api_refusal, api_missing, static, docs):
        assert_common(response)
    # The portal's pages keep their own full CSP; API answers load nothing at all.
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert api_refusal.headers["content-security-policy"].startswith("default-src 'none'")
    # Every /api answer is no-store, even without a session; a static file stays cacheable.
    assert api_refusal.headers["cache-control"] == "no-store"
    assert "no-store" not in static.headers.get("cache-control", "")


async def test_authenticated_answers_are_never_stored(web: httpx.AsyncClient) -> None:
    await login(web)
    listing = await web.get("/api/v1/invoices", params={"number": "00069321"})
    invoice_id = listing.json()["items"][0]["id"]
    pdf = await web.get(f"/api/v1/invoices/{invoice_id}/pdf")
    page = await web.get(f"/factures/{invoice_id}")
    redirect = await web.get("/")
    missing = await web.get("/nulle-part")
    static = await web.get("/static/portal.js")
    assert pdf.headers["content-type"] == "application/pdf"
    for response in (listing, pdf, page, redirect, missing):
        assert_common(response)
        assert response.headers["cache-control"] == "no-store", response.request.url
    assert_common(static)
    assert "no-store" not in static.headers.get("cache-control", "")


async def test_server_errors_get_the_headers_too(web: httpx.AsyncClient) -> None:
    """Starlette sends the 500 from outside every middleware: the handler adds the headers itself."""
    await login(web)
    for path in ("/api/v1/test-failure", "/page-en-panne"):
        response = await web.get(path)
        assert response.status_code == 500
        assert_common(response)
        assert response.headers["cache-control"] == "no-store"
    assert (await web.get("/api/v1/test-failure")).json() == {"detail": "Erreur interne."}


async def test_a_cross_site_refusal_gets_the_headers(web: httpx.AsyncClient) -> None:
    await login(web)
    refused = await web.delete("/api/v1/session", headers={"Origin": "https://ailleurs.example"})
    assert refused.status_code == 403
    assert_common(refused)
    assert refused.headers["cache-control"] == "no-store"


def tiny_app(settings: Settings) -> SecurityHeaders:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("bonjour")

    return SecurityHeaders(Starlette(routes=[Route("/", hello)]), settings=settings)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (Settings(portnet_env="production"), "max-age=31536000"),
        (Settings(portnet_env="production", hsts_max_age_seconds=300), "max-age=300"),
        (Settings(portnet_env="production", hsts_max_age_seconds=0), None),
        (Settings(portnet_env="development"), None),
    ],
)
async def test_hsts_in_production_only(settings: Settings, expected: str | None) -> None:
    transport = httpx.ASGITransport(app=tiny_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="https://portal") as client:
        response = await client.get("/")
    assert response.headers.get("strict-transport-security") == expected
    assert response.headers["x-content-type-options"] == "nosniff"
