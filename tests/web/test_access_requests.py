"""« Nouveau client ? »: the public form stores a request; finance lists it and marks it handled."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from tests.support.pages import logged_in, token_of
from web.app import create_app


@pytest_asyncio.fixture
async def portal(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as client:
        yield client


def request_form(company: str) -> dict[str, str]:
    return {
        "company_name": company,
        "customs_code": "481516",
        "contact_name": "Nadia Berrada",
        "email": "nadia@atlas-import.ma",
        "phone": "+212 522 11 22 33",
        "role": "importateur",
    }


async def test_access_request_form_then_finance_handles_it(portal: httpx.AsyncClient) -> None:
    company = f"ATLAS IMPORT {uuid.uuid4().hex[:6].upper()}"
    form = await portal.get("/nouveau-client")
    assert form.status_code == 200 and "Demande d'accès" in form.text.replace("&#39;", "'")
    bad = await portal.post(
        "/nouveau-client",
        data={**request_form(company), "email": "pas-un-mail", "csrf_token": token_of(form.text)},
    )
    assert bad.status_code == 422 and "adresse e-mail valide" in bad.text
    assert company in bad.text  # nothing typed is lost
    sent = await portal.post(
        "/nouveau-client", data={**request_form(company), "csrf_token": token_of(form.text)}
    )
    assert sent.status_code == 303 and sent.headers["location"] == "/connexion"

    token = await logged_in(portal, "finance")
    listing = await portal.get("/finance/demandes-acces")
    assert listing.status_code == 200 and company in listing.text
    api = (await portal.get("/api/v1/finance/access-requests")).json()["items"]
    mine = next(item for item in api if item["company_name"] == company)
    assert mine["status"] == "open" and mine["role_label"] == "Importateur"
    done = await portal.post(f"/finance/demandes-acces/{mine['id']}/traitee", data={"csrf_token": token})
    assert done.status_code == 303
    assert "marquée comme traitée" in (await portal.get("/finance/demandes-acces")).text  # the flash
    assert company not in (await portal.get("/finance/demandes-acces")).text
    assert company in (await portal.get("/finance/demandes-acces?status=handled")).text
    twice = await portal.post(
        f"/api/v1/finance/access-requests/{mine['id']}/handled", headers={"Origin": "http://127.0.0.1:8000"}
    )
    assert twice.status_code in (403, 409)


async def test_access_request_api_and_who_may_see_them(portal: httpx.AsyncClient) -> None:
    company = f"API IMPORT {uuid.uuid4().hex[:6].upper()}"
    filed = await portal.post("/api/v1/access-requests", json=request_form(company))
    assert filed.status_code == 201 and filed.json()["status"] == "open"
    invalid = await portal.post("/api/v1/access-requests", json={**request_form(company), "role": "pirate"})
    assert invalid.status_code == 422
    assert (await portal.get("/api/v1/finance/access-requests")).status_code == 401
    await logged_in(portal, "sataa")
    assert (await portal.get("/api/v1/finance/access-requests")).status_code == 403
    assert (await portal.get("/finance/demandes-acces")).status_code == 403


async def test_access_requests_are_throttled_like_logins(portal: httpx.AsyncClient) -> None:
    answers = [
        await portal.post("/api/v1/access-requests", json=request_form(f"RAFALE {n} {uuid.uuid4().hex[:4]}"))
        for n in range(6)
    ]
    assert [a.status_code for a in answers] == [201] * 5 + [429]
    assert "Trop de demandes d'accès" in answers[-1].json()["detail"]
