"""CMI card payments end to end: API -> workflow -> CMI sandbox -> signed callback -> settled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import Session, select

from portnet.models import Invoice, PartnerCallback
from portnet.protocols import cmi as cmi_protocol
from portnet.settings import get_settings
from portnet.temporal_codec import payload_codec
from tests.support.api import (
    VISA,
    Stack,
    open_cmi_page,
    pay,
    sandbox_url,
    start_card_payment,
    status_of,
    until_receipt,
    until_status,
)
from tests.support.payloads import history_payload_texts
from tests.support.workers import eventually

DECLINED = {"pan": "4111111111111111", "expiry": "12/30", "cvv": "123"}


async def test_guide_invoice_paid_by_visa(
    stack: Stack, aska: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    # ASKA's 00028653 is the guide's CMI example [513-518] (SATAA's 00069321 offers no CMI).
    found = (await aska.get("/api/v1/invoices", params={"number": "00028653"})).json()
    assert found["total"] == 1
    invoice = found["items"][0]
    assert (invoice["amount_ht"], invoice["amount_tva"], invoice["amount_ttc"]) == (
        "3000.00",
        "600.00",
        "3600.00",
    )

    payment = await start_card_payment(aska, [invoice["id"]])
    assert payment["amount"] == "3600.00" and payment["invoice_numbers"] == ["00028653"]
    fields = payment["next_action"]["fields"]
    assert fields["oid"] == payment["id"] and fields["amount"] == "3600.00"
    assert cmi_protocol.verify_hash(fields, get_settings().cmi_store_key)
    held = (await aska.get(f"/api/v1/invoices/{invoice['id']}")).json()
    assert held["status"] == "in_payment"

    page = await open_cmi_page(anonymous, payment)
    assert "600,00" in page.text
    result = await pay(anonymous, payment["id"], VISA)
    assert result["result"] == "approved"
    assert result["callback_answer"] == "ACTION=POSTAUTH"

    done = await until_status(aska, payment["id"], "succeeded")
    assert done["transaction_id"]
    done = await until_receipt(aska, payment["id"])  # issued a moment after the settlement
    detail = (await aska.get(f"/api/v1/invoices/{invoice['id']}")).json()
    assert detail["status"] == "paid" and detail["status_label"] == "Facture payée"
    assert [p["in_force"] for p in detail["payments"] if p["payment_id"] == payment["id"]] == [True]
    names = [m["name"] for m in detail["messages"]]
    assert names[0] == "INV_115" and "CMI_PAY_REQ" in names and "CMI_PAY_OK" in names and "INV_PAID" in names
    assert [m["seq"] for m in detail["messages"]] == list(range(1, len(detail["messages"]) + 1))
    assert any(d["kind"] == "receipt" for d in detail["documents"])

    receipt = await aska.get(done["receipt_url"])
    assert receipt.status_code == 200 and receipt.content.startswith(b"%PDF-")

    async def mail() -> list[dict[str, Any]] | None:
        messages: list[dict[str, Any]] = (
            await anonymous.get(sandbox_url("/sandbox/mail"), params={"to": "tresorerie@sataa.ma"})
        ).json()
        return [m for m in messages if payment["id"] in (m.get("text") or "")] or None

    messages = await eventually(mail, timeout=30)
    assert "Paiement confirmé" in messages[0]["subject"]
    assert messages[0]["attachments"][0]["content_type"] == "application/pdf"

    # Finance finds the attempt in Temporal by invoice number.
    async def listed() -> list[str] | None:
        ids = [wf.id async for wf in stack.env.client.list_workflows("InvoiceNumbers = '00028653'")]
        return ids or None

    assert f"payment-{payment['id']}" in await eventually(listed, timeout=30)

    # The Update carried the time the portal received CMI's callback: the workflow sees how long it
    # queued, and looks at CMI's order sooner when it did not (workflows/policies.py PROMPT_CALLBACK).
    history = (await stack.env.client.get_workflow_handle(payment["workflow_id"]).fetch_history()).to_json()
    payloads = await history_payload_texts(history, payload_codec(get_settings()))
    received = [json.loads(p)["received_at"] for p in payloads if '"callback_id"' in p]
    assert len(received) == 1
    assert datetime.now(UTC) - timedelta(minutes=5) < datetime.fromisoformat(received[0]) < datetime.now(UTC)


async def test_declines_then_approval_end_paid(
    sataa: httpx.AsyncClient, anonymous: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice(ht="2202.00", tva="440.40")
    payment = await start_card_payment(sataa, [invoice.id or 0])
    await open_cmi_page(anonymous, payment)
    first = await pay(anonymous, payment["id"], DECLINED)
    assert first["result"] == "declined" and first["callback_answer"] == "APPROVED"
    second = await pay(anonymous, payment["id"], DECLINED)
    assert second["result"] == "declined"
    view = (await sataa.get(f"/api/v1/payments/{payment['id']}")).json()
    assert view["status"] == "awaiting_payer" and view["declines"] == 2
    approved = await pay(anonymous, payment["id"], VISA)
    assert approved["callback_answer"] == "ACTION=POSTAUTH"
    await until_status(sataa, payment["id"], "succeeded")
    detail = (await sataa.get(f"/api/v1/invoices/{invoice.id}")).json()
    assert detail["status"] == "paid"
    assert sum("Paiement refusé" in (m["observations"] or "") for m in detail["messages"]) == 2


async def test_forged_and_replayed_callbacks_change_nothing(
    sataa: httpx.AsyncClient, anonymous: httpx.AsyncClient, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    payment = await start_card_payment(sataa, [invoice.id or 0])
    fields = dict(payment["next_action"]["fields"])
    # Every result field CMI posts (partners.md); only the HASH tells them apart.
    result = {"HostRefNum": "26331123456", "ErrMsg": "", "EXTRA.TRXDATE": "20261127 10:00:00"}
    forged = {
        **fields,
        **result,
        "ProcReturnCode": "00",
        "Response": "Approved",
        "TransId": "FORGED1",
        "AuthCode": "000000",
        "MaskedPan": "400000***0010",
        "mdStatus": "1",
    }
    forged["HASH"] = cmi_protocol.compute_hash(forged, "not-the-store-key")
    answer = await anonymous.post("/api/v1/callbacks/cmi", data=forged)
    assert answer.text == "FAILURE"
    wrong_amount = {**forged, "amount": "1.00"}
    wrong_amount["HASH"] = cmi_protocol.compute_hash(wrong_amount, get_settings().cmi_store_key)
    assert (await anonymous.post("/api/v1/callbacks/cmi", data=wrong_amount)).text == "APPROVED"
    view = (await sataa.get(f"/api/v1/payments/{payment['id']}")).json()
    assert view["status"] == "awaiting_payer"

    # The genuine approval comes from CMI (the sandbox); its callback is then replayed as it was.
    await open_cmi_page(anonymous, payment)
    paid = await pay(anonymous, payment["id"], VISA)
    assert paid["callback_answer"] == "ACTION=POSTAUTH"
    genuine = paid["redirect"]["fields"]
    assert (await anonymous.post("/api/v1/callbacks/cmi", data=genuine)).text == "ACTION=POSTAUTH"
    await until_status(sataa, payment["id"], "succeeded")
    db.expire_all()
    verdicts = [
        c.verdict
        for c in db.exec(select(PartnerCallback).where(PartnerCallback.payment_id == payment["id"])).all()
    ]
    assert sorted(verdicts) == ["accepted", "amount_mismatch", "bad_signature", "replay"]
    detail = (await sataa.get(f"/api/v1/invoices/{invoice.id}")).json()
    assert len([p for p in detail["payments"] if p["in_force"]]) == 1


async def test_lost_postauth_answer_is_captured_through_cmis_api(
    sataa: httpx.AsyncClient, anonymous: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    """Every POSTAUTH answer of ours reaches CMI after its 10 s timeout (the sandbox's switch): CMI holds
    an authorisation only. The attempt settles only once our PostAuth captured it, and a replay of
    the callback after the attempt closed is answered from the ledger with POSTAUTH."""
    invoice = make_invoice()
    payment = await start_card_payment(sataa, [invoice.id or 0])
    await open_cmi_page(anonymous, payment)
    paid = await pay(anonymous, payment["id"], {**VISA, "answers_lost": True})
    assert paid["result"] == "approved" and not paid["captured"]
    done = await until_status(sataa, payment["id"], "succeeded", "failed")
    assert done["status"] == "succeeded" and done["transaction_id"] == paid["trans_id"]
    bank = (await anonymous.get(sandbox_url(f"/sandbox/cmi/orders/{payment['id']}"))).json()
    [attempt] = bank["attempts"]
    assert attempt["captured"] and attempt["captured_by"] == "api"
    assert (await status_of(sataa, invoice.id or 0)) == "paid"
    replay = await anonymous.post("/api/v1/callbacks/cmi", data=paid["redirect"]["fields"])
    assert replay.text == "ACTION=POSTAUTH"


async def test_unknown_order_is_acknowledged_without_capture(
    anonymous: httpx.AsyncClient, stack: Stack
) -> None:
    settings = get_settings()
    # A complete, well-signed callback for an order id of ours that no attempt has.
    form = cmi_protocol.build_payment_fields(
        client_id=settings.cmi_client_id,
        store_key=settings.cmi_store_key,
        oid="PN00000000000F",
        amount="10.00",
        ok_url="https://p/ok",
        fail_url="https://p/fail",
        shop_url="https://p/shop",
        callback_url="https://p/cb",
        rnd="abc",
        email="a@b.ma",
        bill_to_name="X",
    )
    fields = {
        **form,
        "ProcReturnCode": "00",
        "Response": "Approved",
        "AuthCode": "123456",
        "TransId": "X1",
        "HostRefNum": "1",
        "ErrMsg": "",
        "mdStatus": "1",
        "EXTRA.TRXDATE": "20261127 10:00:00",
        "MaskedPan": "400000***0010",
    }
    fields["HASH"] = cmi_protocol.compute_hash(fields, get_settings().cmi_store_key)
    assert (await anonymous.post("/api/v1/callbacks/cmi", data=fields)).text == "APPROVED"


async def test_concurrent_attempts_on_one_invoice_hold_it_once(
    sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    body = {"invoice_ids": [invoice.id], "channel": "cmi_card"}
    responses = await asyncio.gather(*[sataa.post("/api/v1/payments", json=body) for _ in range(6)])
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 1 and codes.count(409) == 5, [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 201)
    assert (await sataa.post(f"/api/v1/payments/{winner['id']}/cancel")).status_code == 202
    await until_status(sataa, winner["id"], "cancelled")
    assert (await sataa.get(f"/api/v1/invoices/{invoice.id}")).json()["status"] == "unpaid"


async def test_other_emitter_waits_for_its_acknowledgement(
    sataa: httpx.AsyncClient, anonymous: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    anp = make_invoice(emitter_code="611AGEN001", ht="2202.00", tva="440.40")
    portnet = make_invoice(ht="10.00", tva="2.00")
    payment = await start_card_payment(sataa, [anp.id or 0, portnet.id or 0])
    assert payment["amount"] == "2654.40"
    await open_cmi_page(anonymous, payment)
    await pay(anonymous, payment["id"], VISA)
    await until_status(sataa, payment["id"], "succeeded")

    async def anp_paid() -> str | None:
        status: str = (await sataa.get(f"/api/v1/invoices/{anp.id}")).json()["status"]
        return status if status == "paid" else None

    await eventually(anp_paid, timeout=30)
    detail = (await sataa.get(f"/api/v1/invoices/{anp.id}")).json()
    names = [m["name"] for m in detail["messages"]]
    assert names.index("CMI_PAY_OK") < names.index("INV_SETTLEMENT_NOTICE") < names.index("INV_PAID")
    assert (await sataa.get(f"/api/v1/invoices/{portnet.id}")).json()["status"] == "paid"


async def test_refusals_are_clear(
    sataa: httpx.AsyncClient, aska: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    aska_invoice = (await aska.get("/api/v1/invoices", params={"number": "00028653"})).json()["items"][0]
    other = await sataa.post(
        "/api/v1/payments", json={"invoice_ids": [aska_invoice["id"]], "channel": "cmi_card"}
    )
    assert other.status_code == 404
    paid = make_invoice(status="paid")
    refused = await sataa.post("/api/v1/payments", json={"invoice_ids": [paid.id], "channel": "cmi_card"})
    assert refused.status_code == 409 and "Facture payée" in refused.json()["detail"]
    blocked = make_invoice(status="blocked")
    assert (
        await sataa.post("/api/v1/payments", json={"invoice_ids": [blocked.id], "channel": "cmi_card"})
    ).status_code == 409
    cheque_only = make_invoice(methods="cheque")
    wrong_method = await sataa.post(
        "/api/v1/payments", json={"invoice_ids": [cheque_only.id], "channel": "cmi_card"}
    )
    assert wrong_method.status_code == 422
    unknown = await sataa.post("/api/v1/payments", json={"invoice_ids": [paid.id], "channel": "bitcoin"})
    assert unknown.status_code == 422
    assert (await sataa.get("/api/v1/payments/PNNOSUCH")).status_code == 404
