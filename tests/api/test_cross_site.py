"""Cross-site requests: refused with a session cookie, whatever the body; JSON bodies only as JSON.

The test clients speak to the app in-process as ``http://portal``; what the browser would say about
where a request comes from is in the ``Origin`` and ``Sec-Fetch-Site`` headers set by each test.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from importlib.metadata import version

import httpx
import pytest
import pytest_asyncio

from portnet.settings import get_settings
from tests.support.pages import NoTemporal
from web.app import create_app
from web.security import CROSS_SITE_CODE, origin_of

EVIL = "https://portnet-paiements.example"
CREDENTIALS = b'{"username":"sataa","password":"Portnet2026!"}'
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class InertTemporal:
    """A client that must not be reached: the body is refused before the handler runs."""

    async def get(self) -> object:
        return object()


def ours() -> str:
    origin = origin_of(get_settings().public_base_url)
    assert origin is not None
    return origin


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    app.state.temporal = NoTemporal()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def login(api: httpx.AsyncClient, username: str) -> None:
    response = await api.post("/api/v1/session", json={"username": username, "password": "Portnet2026!"})
    assert response.status_code == 200, response.text


def with_ours(headers: dict[str, str]) -> dict[str, str]:
    """PUBLIC_BASE_URL is set by the session's fixture: parameters name it, the test fills it in."""
    origin = ours()
    values = {
        "OURS": origin,
        "OURS_UPPER": origin.upper(),
        "OURS_OTHER_SCHEME": origin.replace("http://", "https://"),
        "OURS.example": origin + ".example",
    }
    return {name: values.get(value, value) for name, value in headers.items()}


def refused(response: httpx.Response) -> bool:
    """The API's refusal: JSON with its code."""
    return response.status_code == 403 and response.json().get("code") == CROSS_SITE_CODE


def refused_page(response: httpx.Response) -> bool:
    """The portal's refusal: a French page."""
    return response.status_code == 403 and "ne provient pas du portail" in response.text


async def test_body_less_api_posts_from_another_origin_are_refused(api: httpx.AsyncClient) -> None:
    """The reported attack: a cross-site form posting to cancel, resend and confirm (no body at all)."""
    await login(api, "sataa")
    for path in ("/api/v1/payments/PN0123456789AB/cancel", "/api/v1/payments/PN0123456789AB/sms-code/resend"):
        answer = await api.post(path, headers={"Origin": EVIL})
        assert refused(answer), answer.text
        assert "ne provient pas du portail" in answer.json()["detail"]
    await api.delete("/api/v1/session")
    await login(api, "finance")
    confirm = await api.post("/api/v1/finance/payments/PN0123456789AB/confirm", headers={"Origin": EVIL})
    assert refused(confirm)


async def test_every_state_changing_method_is_guarded_body_or_not(api: httpx.AsyncClient) -> None:
    await login(api, "sataa")
    with_body = await api.post(
        "/api/v1/payments", json={"invoice_ids": [1], "channel": "cmi_card"}, headers={"Origin": EVIL}
    )
    assert refused(with_body)
    for method in ("PUT", "PATCH", "DELETE"):
        assert refused(await api.request(method, "/api/v1/session", headers={"Origin": EVIL}))
    # The logout above was refused: the session is still alive.
    assert (await api.get("/api/v1/session")).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling host of the same site is not us either
        {"Origin": "null"},  # sandboxed frames, cross-origin redirects
        {"Origin": "OURS_OTHER_SCHEME"},  # another scheme is another origin
        {"Origin": "OURS.example"},
        {"Origin": "OURS", "Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_what_counts_as_cross_site(api: httpx.AsyncClient, headers: dict[str, str]) -> None:
    await login(api, "sataa")
    assert refused(await api.delete("/api/v1/session", headers=with_ours(headers)))
    assert (await api.get("/api/v1/session")).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "OURS", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "OURS_UPPER"},  # scheme and host are case-insensitive
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},  # typed by the user
        {},  # not a browser: command-line and server clients send neither header
    ],
)
async def test_own_origin_and_non_browser_clients_pass(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    await login(api, "sataa")
    assert (await api.delete("/api/v1/session", headers=with_ours(headers))).status_code == 204
    assert (await api.get("/api/v1/session")).status_code == 401


async def test_reads_and_requests_without_a_session_cookie_are_not_concerned(api: httpx.AsyncClient) -> None:
    # Partners' callbacks are server-to-server and carry no session: never refused for their origin.
    callback = await api.post("/api/v1/callbacks/cmi", data={"oid": "PNX"}, headers={"Origin": EVIL})
    assert callback.status_code != 403
    # Logging in sets the cookie; it does not use one (a JSON body, so no cross-site form can send it).
    login_from_anywhere = await api.post(
        "/api/v1/session", json={"username": "sataa", "password": "Portnet2026!"}, headers={"Origin": EVIL}
    )
    assert login_from_anywhere.status_code == 200
    # A read changes nothing: allowed with the cookie from anywhere (CORS keeps its answer from the page).
    listing = await api.get("/api/v1/invoices", headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
    assert listing.status_code == 200


async def test_portal_forms_are_guarded_too_with_a_french_page(api: httpx.AsyncClient) -> None:
    page = await api.get("/connexion")
    token = TOKEN.search(page.text)
    assert token
    login_form = {"username": "sataa", "password": "Portnet2026!", "csrf_token": token.group(1)}
    assert (await api.post("/connexion", data=login_form)).status_code == 303
    listing = await api.get("/factures")
    token = TOKEN.search(listing.text)
    assert token
    out = await api.post("/deconnexion", data={"csrf_token": token.group(1)}, headers={"Origin": EVIL})
    assert refused_page(out) and out.headers["content-type"].startswith("text/html")
    assert "Accès refusé" in out.text
    assert (await api.get("/factures")).status_code == 200  # still logged in
    # CMI's browser return is a cross-site POST by design; it changes nothing and is let through.
    back = await api.post(
        "/paiements/PN0123456789AB/retour", data={"ProcReturnCode": "00"}, headers={"Origin": EVIL}
    )
    assert back.status_code == 303
    ok = await api.post("/deconnexion", data={"csrf_token": token.group(1)}, headers={"Origin": ours()})
    assert ok.status_code == 303 and ok.headers["location"] == "/connexion"


async def test_the_temporal_ui_may_call_the_codec_endpoint(api: httpx.AsyncClient) -> None:
    """Finance's browser on the Temporal Web UI posts payloads to /temporal-codec/ with its session."""
    await login(api, "finance")
    ui = origin_of(get_settings().temporal_ui_url)
    assert ui is not None
    decode = "/temporal-codec/decode"
    from_ui = await api.post(decode, json={}, headers={"Origin": ui, "Sec-Fetch-Site": "same-site"})
    assert not refused_page(from_ui)
    assert refused_page(await api.post(decode, json={}, headers={"Origin": EVIL}))
    # Only there: the Temporal UI's origin is not ours elsewhere.
    assert refused(await api.delete("/api/v1/session", headers={"Origin": ui}))


# ------------------------------------------------------------------- strict JSON content type


def test_fastapi_is_a_version_with_the_strict_content_type_check() -> None:
    major, minor = (int(part) for part in version("fastapi").split(".")[:2])
    assert (major, minor) >= (0, 132)


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"content": CREDENTIALS, "headers": {"Content-Type": "text/plain"}},
        {"data": {"username": "sataa", "password": "Portnet2026!"}},  # a cross-site HTML form
        {"content": CREDENTIALS},  # fetch() with a Blob body: no Content-Type at all
        {"content": CREDENTIALS, "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
    ],
)
async def test_a_json_endpoint_refuses_anything_but_json(
    api: httpx.AsyncClient, request_kwargs: dict[str, object]
) -> None:
    response = await api.post("/api/v1/session", **request_kwargs)  # type: ignore[arg-type]
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("Le corps de la requête doit être du JSON")
    assert "pn_session" not in response.cookies


async def test_json_with_a_json_content_type_is_read(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/session",
        content=b'{"username":"sataa","password":"Portnet2026!"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


async def test_a_logged_in_payment_cannot_be_started_by_a_text_plain_body(api: httpx.AsyncClient) -> None:
    api.app.state.temporal = InertTemporal()  # type: ignore[attr-defined]
    await login(api, "sataa")
    response = await api.post(
        "/api/v1/payments",
        content=b'{"invoice_ids":[1],"channel":"cmi_card"}',
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid_input"
