"""The JSON API without Temporal: sessions, search, detail, PDF, and who may see what."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session

from portnet.models import Invoice, User
from portnet.security import hash_password
from web.app import create_app


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as client:
        yield client


async def login(api: httpx.AsyncClient, username: str) -> None:
    response = await api.post("/api/v1/session", json={"username": username, "password": "Portnet2026!"})
    assert response.status_code == 200, response.text


async def test_login_logout_and_bad_credentials(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/v1/invoices")).status_code == 401
    bad = await api.post("/api/v1/session", json={"username": "sataa", "password": "wrong"})
    assert bad.status_code == 401 and "pn_session" not in bad.cookies
    unknown = await api.post("/api/v1/session", json={"username": "nobody", "password": "wrong"})
    assert unknown.status_code == 401
    ok = await api.post("/api/v1/session", json={"username": "sataa", "password": "Portnet2026!"})
    assert ok.status_code == 200 and ok.json()["customs_code"] == "290240"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert (await api.get("/api/v1/invoices")).status_code == 200
    assert (await api.delete("/api/v1/session")).status_code == 204
    assert (await api.get("/api/v1/invoices")).status_code == 401


async def test_form_encoded_login_is_refused(api: httpx.AsyncClient) -> None:
    """A cross-site form cannot post JSON; the API refuses anything else."""
    response = await api.post("/api/v1/session", data={"username": "sataa", "password": "Portnet2026!"})
    assert response.status_code == 422


async def test_search_sees_only_own_company(api: httpx.AsyncClient) -> None:
    await login(api, "sataa")
    page = (await api.get("/api/v1/invoices", params={"page_size": 100})).json()
    assert page["total"] > 100 and {i["client"] for i in page["items"]} == {"SATAA IMPORT EXPORT SARL AU"}
    assert (await api.get("/api/v1/invoices", params={"number": "00028653"})).json()["total"] == 0


async def test_guide_invoice_shape(api: httpx.AsyncClient) -> None:
    await login(api, "sataa")
    item = (await api.get("/api/v1/invoices", params={"number": "00069321"})).json()["items"][0]
    assert item["emitter"] == "PORTNET" and item["type"] == "principale" and item["currency"] == "MAD"
    assert (item["amount_ht"], item["amount_tva"], item["amount_ttc"]) == ("3000.00", "600.00", "3600.00")
    assert item["date"].startswith("2017-10-31") and item["due_date"].startswith("2017-12-30")
    detail = (await api.get(f"/api/v1/invoices/{item['id']}")).json()
    assert detail["description"] == "[REN]Abonnement annuel IMP"
    assert detail["prestations"][0]["reference"] == "Abonnement annuel IMP"
    assert detail["messages"][0]["name"] == "INV_115"
    pdf = await api.get(f"/api/v1/invoices/{item['id']}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")


async def test_other_company_invoice_is_404_everywhere(api: httpx.AsyncClient) -> None:
    await login(api, "aska")
    aska_invoice = (await api.get("/api/v1/invoices", params={"number": "00028653"})).json()["items"][0]
    await api.delete("/api/v1/session")
    await login(api, "sataa")
    for path in (f"/api/v1/invoices/{aska_invoice['id']}", f"/api/v1/invoices/{aska_invoice['id']}/pdf"):
        assert (await api.get(path)).status_code == 404


async def test_finance_sees_every_company(api: httpx.AsyncClient) -> None:
    await login(api, "finance")
    assert (await api.get("/api/v1/invoices", params={"number": "00028653"})).json()["total"] == 1
    assert (await api.get("/api/v1/invoices", params={"number": "00069321"})).json()["total"] == 1


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"status": "unpaid"}, lambda i: i["status"] == "unpaid"),
        ({"type": "avoir"}, lambda i: i["type"] == "avoir"),
        ({"emitter": "611AGEN001"}, lambda i: i["emitter"] == "ANP"),
        ({"date_from": "2020-01-01", "date_to": "2020-12-31"}, lambda i: i["date"].startswith("2020")),
    ],
)
async def test_each_criterion_narrows(
    api: httpx.AsyncClient, params: dict[str, str], check: Callable[[dict[str, str]], bool]
) -> None:
    await login(api, "sataa")
    everything = (await api.get("/api/v1/invoices")).json()["total"]
    page = (await api.get("/api/v1/invoices", params={**params, "page_size": 100})).json()
    assert 0 < page["total"] < everything
    assert all(check(i) for i in page["items"])


async def test_prestation_criteria_and_paging(
    api: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    await login(api, "sataa")
    by_ref = (
        await api.get("/api/v1/invoices", params={"reference": "ESC-TEST", "number": invoice.number})
    ).json()
    assert by_ref["total"] == 1
    by_line = (
        await api.get(
            "/api/v1/invoices", params={"prestation": "Droits de port", "operation_type": "Escale navire"}
        )
    ).json()
    assert by_line["total"] >= 1
    first = (await api.get("/api/v1/invoices", params={"page": 1, "page_size": 10})).json()
    second = (await api.get("/api/v1/invoices", params={"page": 2, "page_size": 10})).json()
    assert len(first["items"]) == 10 and not {i["id"] for i in first["items"]} & {
        i["id"] for i in second["items"]
    }


async def test_bad_query_values_are_422(api: httpx.AsyncClient) -> None:
    await login(api, "sataa")
    assert (await api.get("/api/v1/invoices", params={"date_from": "31/10/2017"})).status_code == 422
    assert (await api.get("/api/v1/invoices", params={"status": "bogus"})).status_code == 422
    assert (await api.get("/api/v1/invoices", params={"page_size": 1000})).status_code == 422


async def test_emitter_lookup(api: httpx.AsyncClient) -> None:
    await login(api, "sataa")
    found = (await api.get("/api/v1/emitters", params={"q": "anp"})).json()
    assert [e["code"] for e in found] == ["611AGEN001"]
    assert found[0]["rc_number"] == "R23242342"


async def test_password_change_rules(api: httpx.AsyncClient, db: Session) -> None:
    user = User(
        username=f"api{uuid.uuid4().hex[:8]}", password_hash=hash_password("Portnet2026!"), role="admin"
    )
    db.add(user)
    db.commit()
    await login(api, user.username)
    wrong = await api.post(
        "/api/v1/session/password", json={"current_password": "x", "new_password": "Abcdef12345!"}
    )
    assert wrong.status_code == 422
    weak = await api.post(
        "/api/v1/session/password", json={"current_password": "Portnet2026!", "new_password": "short"}
    )
    assert weak.status_code == 422 and "au moins 12 caractères" in weak.json()["detail"]
    ok = await api.post(
        "/api/v1/session/password",
        json={"current_password": "Portnet2026!", "new_password": "Nouveau-Mot2passe"},
    )
    assert ok.status_code == 204
    demo_again = await api.post(
        "/api/v1/session/password",
        json={"current_password": "Nouveau-Mot2passe", "new_password": "Portnet2026!"},
    )
    assert demo_again.status_code == 422  # the demo password's shape is refused for a new password


async def test_payments_need_a_session(api: httpx.AsyncClient) -> None:
    assert (
        await api.post("/api/v1/payments", json={"invoice_ids": [1], "channel": "cmi_card"})
    ).status_code == 401
    assert (await api.get("/api/v1/payments/PNX")).status_code == 401
