"""MARSA MAROC invoice requests over real HTTP: portal API -> workflow -> MARSA MAROC sandbox -> ledger.

The sandbox is told to misbehave through its admin endpoint; every test resets it first.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from portnet.models import Company, Emitter, Invoice
from tests.support.api import VISA, Stack, login, open_cmi_page, pay, sandbox_url, until_status
from tests.support.pages import token_of
from tests.support.workers import eventually, running_worker
from workflows.invoice_request import InvoiceRequestInput, InvoiceRequestWorkflow, request_workflow_id

GUIDE = {
    "02296945": ("2202.00", "2642.40"),
    "02296947": ("2202.00", "2642.40"),
    "02329290": ("10765.00", "12918.00"),
    "02329291": ("46.35", "55.62"),
    "02345680": ("291.90", "350.28"),
    "02627517": ("216.60", "259.92"),
    "03080456": ("862.53", "1035.04"),
    "03080965": ("1282.22", "1538.66"),
}


@pytest_asyncio.fixture
async def tmta(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    client = await login(stack.base_url, "tmta")
    await client.delete(sandbox_url("/sandbox/marsa-maroc/admin/faults"))
    yield client
    await client.delete(sandbox_url("/sandbox/marsa-maroc/admin/faults"))
    await client.aclose()


async def fault(client: httpx.AsyncClient, **body: Any) -> None:
    response = await client.post(sandbox_url("/sandbox/marsa-maroc/admin/faults"), json=body)
    assert response.status_code == 200, response.text


async def request_and_wait(client: httpx.AsyncClient, timeout: float = 60.0, **body: str) -> dict[str, Any]:
    response = await client.post("/api/v1/marsa-maroc/requests", json={"terminal": "CASA", **body})
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["status"] == "running"

    async def done() -> dict[str, Any] | None:
        view: dict[str, Any] = (await client.get(f"/api/v1/marsa-maroc/requests/{started['id']}")).json()
        return view if view.get("status") in ("completed", "failed") else None

    return await eventually(done, timeout=timeout, every=0.2)


def marsa_invoices(db: Session) -> list[Invoice]:
    db.expire_all()
    company = db.exec(select(Company).where(Company.customs_code == "1247")).one()
    emitter = db.exec(select(Emitter).where(Emitter.code == "611MARS001")).one()
    return list(
        db.exec(
            select(Invoice).where(Invoice.company_id == company.id, Invoice.emitter_id == emitter.id)
        ).all()
    )


async def test_terminals_come_from_settings(tmta: httpx.AsyncClient) -> None:
    names = [t["name"] for t in (await tmta.get("/api/v1/marsa-maroc/terminals")).json()["terminals"]]
    assert names[0] == "Casablanca" and "Laâyoune" in names and len(names) == 10


async def test_guide_request_twice_gives_23_invoices_once(tmta: httpx.AsyncClient, db: Session) -> None:
    first = await request_and_wait(tmta, customer_id="000236")
    assert first["status"] == "completed", first
    assert len(first["invoices"]) == 23 and first["progress"]["pages_total"] == 3
    by_number = {i["number"]: i for i in first["invoices"]}
    for number, (ht, ttc) in GUIDE.items():
        assert (by_number[number]["amount_ht"], by_number[number]["amount_ttc"]) == (ht, ttc)
        assert by_number[number]["emitter"] == "MARSAMAROC CASA"
        assert by_number[number]["payment_methods"] == ["cmi"]
    assert by_number["02296945"]["date"].startswith("1997-02-03")

    second = await request_and_wait(tmta, customer_id="000236")
    assert second["status"] == "completed" and second["progress"]["created"] == 0
    assert sorted(i["id"] for i in second["invoices"]) == sorted(i["id"] for i in first["invoices"])
    assert len(marsa_invoices(db)) == 23
    # They are in invoice management too.
    listed = (await tmta.get("/api/v1/invoices", params={"emitter": "611MARS001", "page_size": 50})).json()
    assert listed["total"] == 23


async def test_duplicate_rows_across_pages_are_one_invoice(tmta: httpx.AsyncClient, db: Session) -> None:
    await fault(tmta, kind="duplicate")
    view = await request_and_wait(tmta, customer_id="000236")
    assert view["status"] == "completed"
    assert view["progress"]["received"] == 25  # pages 2 and 3 each repeat a row
    assert len(view["invoices"]) == 23 and len(marsa_invoices(db)) == 23


async def test_5xx_and_timeouts_are_retried(tmta: httpx.AsyncClient) -> None:
    await fault(tmta, kind="error", times=2, status_code=503)
    view = await request_and_wait(tmta, customer_id="000236")
    assert view["status"] == "completed" and len(view["invoices"]) == 23
    # Slower than the 2-second timeout of the tests: the call times out, then the retry succeeds.
    await fault(tmta, kind="slow", times=1, delay_seconds=3)
    view = await request_and_wait(tmta, customer_id="000236")
    assert view["status"] == "completed" and len(view["invoices"]) == 23


async def test_401_404_and_malformed_fail_in_french(tmta: httpx.AsyncClient) -> None:
    await fault(tmta, kind="unauthorized")
    view = await request_and_wait(tmta, customer_id="000236")
    assert view["status"] == "failed" and view["error_code"] == "MarsaUnauthorized"
    assert "authentification" in view["error"]

    await fault(tmta, kind="malformed")
    view = await request_and_wait(tmta, customer_id="000236")
    assert view["status"] == "failed" and view["error_code"] == "MarsaMalformed"
    assert "illisible" in view["error"]

    await tmta.delete(sandbox_url("/sandbox/marsa-maroc/admin/faults"))
    response = await tmta.post(
        "/api/v1/marsa-maroc/requests", json={"terminal": "MOHA", "customer_id": "000236"}
    )
    request_id = response.json()["id"]

    async def done() -> dict[str, Any] | None:
        body: dict[str, Any] = (await tmta.get(f"/api/v1/marsa-maroc/requests/{request_id}")).json()
        return body if body["status"] != "running" else None

    view = await eventually(done, timeout=30)
    assert view["status"] == "failed" and view["error_code"] == "MarsaNotFound"
    assert "ne connaît pas ce client" in view["error"]


async def test_another_company_customer_id_is_refused(tmta: httpx.AsyncClient, stack: Stack) -> None:
    response = await tmta.post(
        "/api/v1/marsa-maroc/requests", json={"terminal": "MOHA", "customer_id": "000118"}
    )
    assert response.status_code == 403
    bad = await tmta.post(
        "/api/v1/marsa-maroc/requests", json={"terminal": "NOWHERE", "customer_id": "000236"}
    )
    assert bad.status_code == 422
    # A request is only visible to its company.
    view = await request_and_wait(tmta, invoice_number="02329291")
    assert view["status"] == "completed" and [i["number"] for i in view["invoices"]] == ["02329291"]
    sataa = await login(stack.base_url, "sataa")
    try:
        assert (await sataa.get(f"/api/v1/marsa-maroc/requests/{view['id']}")).status_code == 404
    finally:
        await sataa.aclose()


async def test_paid_invoice_is_not_reset_and_reaches_facture_payee(
    stack: Stack, tmta: httpx.AsyncClient, anonymous: httpx.AsyncClient, db: Session
) -> None:
    view = await request_and_wait(tmta, customer_id="000236")
    ids = {i["number"]: i["id"] for i in view["invoices"]}
    targets = [ids["02296945"], ids["02296947"]]
    # MARSA MAROC (the emitter sandbox) holds its acknowledgements back until told otherwise.
    held = await anonymous.post(sandbox_url("/sandbox/emitters/auto-ack"), data={"enabled": "0"})
    assert held.status_code == 303
    try:
        response = await tmta.post(
            "/api/v1/payments",
            json={"invoice_ids": targets, "channel": "cmi_card", "payer": {"email": "comptabilite@tmta.ma"}},
        )
        assert response.status_code == 201, response.text
        payment = response.json()
        assert payment["amount"] == "5284.80"
        await open_cmi_page(anonymous, payment)
        assert (await pay(anonymous, payment["id"], VISA))["result"] == "approved"
        await until_status(tmta, payment["id"], "succeeded", "awaiting_emitter", "awaiting_partner")

        async def awaiting() -> bool:
            statuses = [(await tmta.get(f"/api/v1/invoices/{i}")).json()["status"] for i in targets]
            return statuses == ["awaiting_partner"] * 2

        await eventually(awaiting, timeout=30)
        # MARSA MAROC still lists them as open: a stale answer must not reset them.
        again = await request_and_wait(tmta, customer_id="000236")
        assert again["status"] == "completed"
        statuses = {i["number"]: i["status"] for i in again["invoices"]}
        assert statuses["02296945"] == statuses["02296947"] == "awaiting_partner"
    finally:
        await anonymous.post(sandbox_url("/sandbox/emitters/auto-ack"), data={"enabled": "1"})

    async def paid() -> bool:
        details = [(await tmta.get(f"/api/v1/invoices/{i}")).json() for i in targets]
        return all(d["status"] == "paid" and d["status_label"] == "Facture payée" for d in details)

    await eventually(paid, timeout=30)
    notices = (await anonymous.get(sandbox_url("/sandbox/emitters/611MARS001/settlements"))).json()
    assert any(n["payment_id"] == payment["id"] and n["ack_state"] == "delivered" for n in notices)
    after = await request_and_wait(tmta, customer_id="000236")
    assert {i["number"]: i["status"] for i in after["invoices"]}["02296945"] == "paid"


async def test_retrieval_survives_a_worker_restart(
    stack: Stack, dev_env: WorkflowEnvironment, tmta: httpx.AsyncClient, db: Session
) -> None:
    company = db.exec(select(Company).where(Company.customs_code == "1247")).one()
    await fault(tmta, kind="slow", delay_seconds=0.8)
    inp = InvoiceRequestInput(
        request_id="MRRESTART0001", company_id=company.id or 0, terminal="CASA", customer_id="000236"
    )
    async with running_worker(dev_env.client) as queue:
        handle = await dev_env.client.start_workflow(
            InvoiceRequestWorkflow.run, inp, id=request_workflow_id(inp.request_id), task_queue=queue
        )

        async def first_page() -> bool:
            view = await handle.query(InvoiceRequestWorkflow.progress)
            return view is not None and view.pages_done >= 1

        await eventually(first_page, timeout=30)
    # The worker is gone mid-retrieval; a new one on the same queue finishes it.
    await tmta.delete(sandbox_url("/sandbox/marsa-maroc/admin/faults"))
    async with running_worker(dev_env.client, task_queue=queue):
        result = await handle.result()
    assert result.status == "completed" and result.pages_done == 3
    assert len(result.invoice_ids) == 23 and len(marsa_invoices(db)) == 23


async def test_portal_request_page_to_confirmation_with_cmi_channels_only(tmta: httpx.AsyncClient) -> None:
    form = await tmta.get("/factures/demande")
    assert form.status_code == 200
    html = form.text
    for name in ("Casablanca", "Mohammedia", "Jorf Lasfar", "Tanger Med", "Laâyoune", "Dakhla"):
        assert name in html, name
    assert 'value="000236"' in html and "Envoyer" in html
    token = token_of(html)

    await fault(tmta, kind="slow", times=1, delay_seconds=1.0)
    sent = await tmta.post(
        "/factures/demande",
        data={"csrf_token": token, "terminal": "CASA", "customer_id": "000236", "invoice_number": ""},
    )
    assert sent.status_code == 303
    location = sent.headers["location"]
    assert location.startswith("/factures/demande/MR")
    first = await tmta.get(location)
    assert first.status_code == 200
    if "Traitement en cours" in first.text:
        # portal.js follows the request through the API; without JavaScript the page reloads itself.
        assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in first.text
        request_id = location.rsplit("/", 1)[1]
        assert f'data-request-watch="/api/v1/marsa-maroc/requests/{request_id}"' in first.text
        followed = await tmta.get(f"/api/v1/marsa-maroc/requests/{request_id}")
        assert followed.status_code == 200 and followed.json()["id"] == request_id

    async def listed() -> str | None:
        page = (await tmta.get(location)).text
        return page if "Résultats ( 23 )" in page else None

    page = await eventually(listed, timeout=30)
    assert "MARSAMAROC CASA" in page and "Page 1 / 2" in page
    second_page = (await tmta.get(location, params={"page": 2})).text
    assert "Page 2 / 2" in second_page
    ids = re.findall(r'name="invoice_ids" value="(\d+)"', page)
    assert ids, "no payable invoice on the page"
    confirmation = await tmta.post(
        "/paiements/confirmation", data={"csrf_token": token_of(page), "invoice_ids": ids[:2]}
    )
    assert confirmation.status_code == 200
    text = confirmation.text
    assert "Carte bancaire" in text and "Fatourati" in text
    assert 'value="amanpay_amanty"' not in text and 'value="cheque"' not in text

    refused = await tmta.post(
        "/factures/demande", data={"csrf_token": token, "terminal": "CASA", "customer_id": "999999"}
    )
    assert refused.status_code == 403 and "pas celui de votre société" in refused.text


async def test_each_terminal_is_its_own_emitter_and_invoices_are_complete(
    tmta: httpx.AsyncClient, db: Session
) -> None:
    response = await tmta.post(
        "/api/v1/marsa-maroc/requests", json={"terminal": "JORF", "customer_id": "000236"}
    )
    request_id = response.json()["id"]

    async def done() -> dict[str, Any] | None:
        body: dict[str, Any] = (await tmta.get(f"/api/v1/marsa-maroc/requests/{request_id}")).json()
        return body if body["status"] != "running" else None

    view = await eventually(done, timeout=30)
    assert view["status"] == "completed", view
    assert [(i["number"], i["emitter"]) for i in view["invoices"]] == [("06300021", "MARSAMAROC JORF")]
    assert db.exec(select(Emitter).where(Emitter.code == "611MARSJORF")).one().name == "MARSAMAROC JORF"

    casa = await request_and_wait(tmta, customer_id="000236")
    for invoice_id in (view["invoices"][0]["id"], casa["invoices"][0]["id"]):
        detail = (await tmta.get(f"/api/v1/invoices/{invoice_id}")).json()
        assert detail["prestations"] and detail["prestations"][0]["prestation"] == "Manutention conteneur"
        assert detail["messages"][0]["observations"] == "Création de la Facture"
        assert "Facture" in [d["description"] for d in detail["documents"]]
