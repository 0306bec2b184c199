"""Every number bounded, every text storable: a clear 4xx (French), never a 500, on both databases."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from tests.support.pages import NoTemporal
from web.app import create_app
from web.limits import MAX_PAGE, MAX_ROW_ID, page_number, row_id

HUGE = str(10**19)  # beyond SQLite's 64-bit INTEGER and any OFFSET
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class InertTemporal:
    """A client that must not be reached: the request is refused before the handler uses it."""

    async def get(self) -> object:
        return object()


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    app.state.temporal = InertTemporal()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def login(api: httpx.AsyncClient, username: str) -> None:
    response = await api.post("/api/v1/session", json={"username": username, "password": "Portnet2026!"})
    assert response.status_code == 200, response.text


def french_422(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 422, (response.status_code, response.text[:300])
    body = response.json()
    assert isinstance(body["detail"], str) and body["code"] == "invalid_input", body
    assert body["detail"].startswith("Données invalides") or "Texte invalide" in body["detail"]
    for word in words:
        assert word in body["detail"], body["detail"]


async def test_page_ten_to_the_nineteenth_is_a_422_not_a_500(api: httpx.AsyncClient) -> None:
    """The reported ``page=10**19``: an OFFSET no database computes."""
    await login(api, "sataa")
    too_far = await api.get("/api/v1/invoices", params={"page": HUGE})
    french_422(too_far, "page", f"inférieur ou égal à {MAX_PAGE}")
    french_422(await api.get("/api/v1/invoices", params={"page": 0}), "page", "supérieur ou égal à 1")
    french_422(await api.get("/api/v1/invoices", params={"page": "deux"}), "page", "nombre entier")
    french_422(await api.get("/api/v1/invoices", params={"page_size": HUGE}), "page_size")
    last = await api.get("/api/v1/invoices", params={"page": MAX_PAGE})
    assert last.status_code == 200 and last.json()["items"] == []
    await api.delete("/api/v1/session")
    await login(api, "finance")
    french_422(await api.get("/api/v1/finance/payments", params={"page": HUGE}), "page")
    assert (await api.get("/api/v1/finance/payments", params={"page": MAX_PAGE})).status_code == 200


@pytest.mark.parametrize("value", [HUGE, str(MAX_ROW_ID + 1), "0", "-1", "1e3"])
async def test_ids_in_paths_are_bounded(api: httpx.AsyncClient, value: str) -> None:
    await login(api, "finance")
    for method, path, body in (
        ("GET", f"/api/v1/invoices/{value}", None),
        ("GET", f"/api/v1/invoices/{value}/pdf", None),
        ("POST", f"/api/v1/finance/unapplied/{value}/apply", {"invoice_number": "00069321"}),
        ("POST", f"/api/v1/finance/unapplied/{value}/refund", {"note": "x"}),
        ("POST", f"/api/v1/finance/invoices/{value}/block", {"reason": "litige"}),
    ):
        french_422(await api.request(method, path, json=body))


async def test_invoice_ids_in_a_payment_body_are_bounded(api: httpx.AsyncClient) -> None:
    await login(api, "sataa")
    for ids in ([10**19], [0], [-5], [MAX_ROW_ID + 1]):
        answer = await api.post("/api/v1/payments", json={"invoice_ids": ids, "channel": "cmi_card"})
        french_422(answer, "invoice_ids[0]")
    none = await api.post("/api/v1/payments", json={"invoice_ids": [], "channel": "cmi_card"})
    french_422(none, "invoice_ids")


async def test_payment_ids_in_paths_have_our_shape(api: httpx.AsyncClient) -> None:
    await login(api, "sataa")
    for path in ("/api/v1/payments/PN%00X", "/api/v1/payments/" + "P" * 65, "/api/v1/payments/a%20b/receipt"):
        assert (await api.get(path)).status_code == 422


@pytest.mark.parametrize(
    "query",
    [{"number": "\x00"}, {"reference": "ESC\x00"}, {"emitter": "\x00611"}],
)
async def test_nul_characters_in_a_query_are_refused(api: httpx.AsyncClient, query: dict[str, str]) -> None:
    """PostgreSQL refuses NUL in any string: it must not get as far as a query."""
    await login(api, "sataa")
    response = await api.get("/api/v1/invoices", params=query)
    assert response.status_code == 422 and "caractère nul" in response.json()["detail"]
    assert (await api.get("/api/v1/emitters", params={"q": "a\x00"})).status_code == 422


@pytest.mark.parametrize(
    "raw",
    [
        b'{"username": "sa\\u0000taa", "password": "Portnet2026!"}',
        b'{"username": "\\ud800", "password": "Portnet2026!"}',  # a lone surrogate: not UTF-8 encodable
        b'{"username": "sataa", "password": "x\\u0000"}',
    ],
)
async def test_unstorable_text_in_a_json_body_is_refused(api: httpx.AsyncClient, raw: bytes) -> None:
    response = await api.post("/api/v1/session", content=raw, headers={"Content-Type": "application/json"})
    # pydantic refuses a lone surrogate itself ("texte UTF-8 attendu"); NUL is ours to refuse.
    assert response.status_code == 422 and "UTF-8" in response.json()["detail"]


async def test_nested_text_in_a_payment_body_is_checked(api: httpx.AsyncClient) -> None:
    await login(api, "sataa")
    body = {"invoice_ids": [1], "channel": "cmi_card", "payer": {"name": "A\x00B", "email": "a@b.ma"}}
    response = await api.post("/api/v1/payments", json=body)
    assert response.status_code == 422 and "payer" in response.json()["detail"]


async def test_validation_errors_are_french_and_structured(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/session", json={"username": "sataa", "mot": "x"})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "Données invalides — password : champ obligatoire; mot : champ non prévu."
    assert {(tuple(e["loc"]), e["type"]) for e in body["errors"]} == {
        (("body", "password"), "missing"),
        (("body", "mot"), "extra_forbidden"),
    }
    malformed = await api.post("/api/v1/session", content=b"{", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 422 and "JSON invalide" in malformed.json()["detail"]
    schema = (await api.get("/openapi.json")).json()["components"]["schemas"]["HTTPValidationError"]
    assert schema["required"] == ["detail", "code", "errors"]


# ------------------------------------------------------------------------------------- portal


async def portal_login(api: httpx.AsyncClient, username: str) -> str:
    page = await api.get("/connexion")
    token = TOKEN.search(page.text)
    assert token
    form = {"username": username, "password": "Portnet2026!", "csrf_token": token.group(1)}
    assert (await api.post("/connexion", data=form)).status_code == 303
    listing = await api.get("/factures")
    token = TOKEN.search(listing.text)
    assert token
    return token.group(1)


async def test_portal_numbers_never_overflow(api: httpx.AsyncClient) -> None:
    """``str.isdigit`` accepts "²", which ``int()`` refuses: that was a 500 on three portal routes."""
    api.app.state.temporal = NoTemporal()  # type: ignore[attr-defined]
    token = await portal_login(api, "sataa")
    for path in ("/factures/²", f"/factures/{HUGE}", "/factures/٣"):
        assert (await api.get(path)).status_code == 404
    for params in ({"page": "²"}, {"page": HUGE}, {"page_size": "²"}):
        assert (await api.get("/factures", params=params)).status_code == 200
    picked = await api.post("/paiements/confirmation", data={"invoice_ids": ["²", HUGE], "csrf_token": token})
    assert picked.status_code == 303 and picked.headers["location"] == "/factures"
    await api.post("/deconnexion", data={"csrf_token": token})
    token = await portal_login(api, "finance")
    assert (await api.get("/finance/paiements", params={"page": HUGE})).status_code == 200
    assert (await api.get("/finance/paiements", params={"page": "²"})).status_code == 200
    for path in (f"/finance/factures/{HUGE}/action", f"/finance/encaissements/{HUGE}/rembourser"):
        answer = await api.post(path, data={"csrf_token": token, "action": "block", "reason": "litige"})
        assert answer.status_code == 404


def test_row_id_and_page_number_parsers() -> None:
    assert row_id("42") == 42 and row_id(" 7 ") == 7
    assert row_id("²") is None and row_id("٣") is None and row_id("0") is None and row_id(HUGE) is None
    assert row_id(str(MAX_ROW_ID)) == MAX_ROW_ID and row_id(str(MAX_ROW_ID + 1)) is None
    assert page_number("3") == 3 and page_number("0") == 1 and page_number("²") == 1
    assert page_number(str(MAX_PAGE + 5)) == MAX_PAGE and page_number(HUGE) == 1 and page_number(None, 4) == 4
