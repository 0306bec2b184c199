"""MARSA MAROC's invoicing API (our design): bearer token, paging, look-ups, and faults on demand."""

from __future__ import annotations

import httpx

from portnet.settings import Settings


def bearer(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.marsa_maroc_api_token}"}


async def invoices(client: httpx.AsyncClient, settings: Settings, **params: str | int) -> httpx.Response:
    return await client.get("/marsa-maroc/api/v1/invoices", params=params, headers=bearer(settings))


async def test_customer_invoices_page_by_page(client: httpx.AsyncClient, settings: Settings) -> None:
    pages = [
        (await invoices(client, settings, terminal="casa", customer_id="000236", page=n, page_size=10)).json()
        for n in (1, 2, 3)
    ]
    assert [(p["page"], p["pages"], p["total"]) for p in pages] == [(1, 3, 23), (2, 3, 23), (3, 3, 23)]
    numbers = [i["invoice_number"] for p in pages for i in p["items"]]
    assert len(numbers) == len(set(numbers)) == 23 and numbers[0] == "02296945"
    first = pages[0]["items"][0]
    assert (first["amount_ht"], first["amount_tva"], first["amount_ttc"]) == ("2202.00", "440.40", "2642.40")
    assert first["currency"] == "MAD" and first["status"] == "unpaid" and first["customer_id"] == "000236"


async def test_look_ups_and_their_refusals(client: httpx.AsyncClient, settings: Settings) -> None:
    one = (await invoices(client, settings, terminal="CASA", invoice_number="02329291")).json()
    assert [i["invoice_number"] for i in one["items"]] == ["02329291"]
    assert (await invoices(client, settings, terminal="MOHA", invoice_number="02329291")).status_code == 404
    assert (await invoices(client, settings, terminal="NOWHERE", customer_id="000236")).status_code == 404
    assert (await invoices(client, settings, terminal="CASA", customer_id="999999")).status_code == 404
    assert (await invoices(client, settings, terminal="CASA")).status_code == 400
    both = await invoices(client, settings, terminal="CASA", customer_id="000236", invoice_number="02329291")
    assert both.status_code == 400
    assert (
        await invoices(client, settings, terminal="CASA", customer_id="000236", page="x")
    ).status_code == 400
    other = await client.get(
        "/marsa-maroc/api/v1/invoices", params={"terminal": "CASA", "customer_id": "000236"},
        headers={"Authorization": "Bearer not-the-token"},
    )  # fmt: skip
    assert other.status_code == 401
    terminals = await client.get("/marsa-maroc/api/v1/terminals", headers=bearer(settings))
    assert {"code": "CASA", "name": "Casablanca"} in terminals.json()["terminals"]
    assert (await client.get("/marsa-maroc/api/v1/terminals")).status_code == 401


async def test_faults_on_demand(client: httpx.AsyncClient, settings: Settings) -> None:
    async def ask() -> httpx.Response:
        return await invoices(client, settings, terminal="CASA", customer_id="000236", page=2, page_size=10)

    set_ = await client.post(
        "/marsa-maroc/admin/faults", json={"kind": "error", "times": 1, "status_code": 502}
    )
    assert set_.json()["kind"] == "error"
    assert (await ask()).status_code == 502
    assert (await ask()).status_code == 200

    await client.post("/marsa-maroc/admin/faults", json={"kind": "malformed", "times": 1})
    broken = await ask()
    assert broken.status_code == 200 and broken.text.startswith('{"page": 1')

    await client.post("/marsa-maroc/admin/faults", json={"kind": "duplicate"})
    page2 = (await ask()).json()
    page1 = (
        await invoices(client, settings, terminal="CASA", customer_id="000236", page=1, page_size=10)
    ).json()
    assert page2["items"][0] == page1["items"][-1]  # the listing "shifted" between two calls
    await client.post("/marsa-maroc/admin/faults", json={"kind": "unauthorized", "times": 2})
    assert (await ask()).status_code == 401
    state = (await client.get("/marsa-maroc/admin/state")).json()
    assert state["fault"] == "unauthorized" and state["remaining"] == 1 and state["calls"] == 6

    assert (await client.delete("/marsa-maroc/admin/faults")).json()["kind"] is None
    assert (await ask()).status_code == 200
    assert (await client.post("/marsa-maroc/admin/faults", json={"kind": "fire"})).status_code == 400
    assert (
        await client.post("/marsa-maroc/admin/faults", json={"kind": "slow", "times": "x"})
    ).status_code == 400


async def test_slow_answers(client: httpx.AsyncClient, settings: Settings) -> None:
    await client.post("/marsa-maroc/admin/faults", json={"kind": "slow", "times": 1, "delay_seconds": 0.05})
    reply = await invoices(client, settings, terminal="CASA", customer_id="000236")
    assert reply.status_code == 200 and reply.elapsed.total_seconds() >= 0.05


async def test_customers_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/marsa-maroc/")
    assert page.status_code == 200 and "000236" in page.text and "Casablanca" in page.text
    assert "Panne programmée : aucune" in page.text
