"""The finance back-office API: who may call it, and the cheque / transfer confirmation it drives."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from portnet.models import Company, Invoice, Payment, UnappliedPayment
from portnet.protocols import amanpay as amanpay_protocol
from portnet.settings import get_settings
from tests.support.api import (
    Stack,
    callback_fields,
    declare_transfer,
    login,
    start_card_payment,
    start_fatourati,
    status_of,
    until_status,
)
from tests.support.pages import logged_in

FINANCE_CALLS = [
    ("GET", "/api/v1/finance/payments", None),
    ("POST", "/api/v1/finance/payments/PNX/confirm", {}),
    ("POST", "/api/v1/finance/payments/PNX/reject", {"reason": "non reçu"}),
    ("GET", "/api/v1/finance/unapplied", None),
    ("POST", "/api/v1/finance/unapplied/1/apply", {"invoice_number": "00069321"}),
    ("POST", "/api/v1/finance/invoices/1/block", {"reason": "litige"}),
]


@pytest.mark.parametrize(("method", "path", "body"), FINANCE_CALLS)
async def test_clients_get_403_and_strangers_401(
    stack: Stack,
    sataa: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    assert (await sataa.request(method, path, json=body)).status_code == 403
    assert (await anonymous.request(method, path, json=body)).status_code == 401


async def test_transfer_waits_for_finance_and_only_then_renews_the_subscription(
    stack: Stack, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice(ht="3000.00", tva="600.00")
    invoice.is_subscription = True
    db.add(invoice)
    company = db.get(Company, invoice.company_id)
    assert company is not None
    before = company.subscription_end
    db.commit()

    bad = await sataa.post(
        "/api/v1/payments",
        json={
            "invoice_ids": [invoice.id],
            "channel": "bank_transfer",
            "declaration": {"transfer_reference": "x"},
        },
    )
    assert bad.status_code == 422
    payment = await declare_transfer(sataa, [invoice.id or 0])
    assert payment["status"] == "awaiting_confirmation"
    assert await status_of(sataa, invoice.id or 0) == "in_payment"
    db.expire_all()
    assert db.get(Company, invoice.company_id).subscription_end == before  # type: ignore[union-attr]

    finance = await login(stack.base_url, "finance")
    try:
        listed = (await finance.get("/api/v1/finance/payments", params={"channel": "bank_transfer"})).json()
        row = next(p for p in listed["items"] if p["id"] == payment["id"])
        assert (
            row["status"] == "awaiting_confirmation"
            and row["declaration"]["transfer_reference"] == "VIR-TEST-0001"
        )
        assert row["temporal_url"].endswith(f"/namespaces/default/workflows/payment-{payment['id']}")
        no_reason = await finance.post(
            f"/api/v1/finance/payments/{payment['id']}/reject", json={"reason": ""}
        )
        assert no_reason.status_code == 422
        confirmed = await finance.post(
            f"/api/v1/finance/payments/{payment['id']}/confirm", json={"reason": "relevé BMCE"}
        )
        assert confirmed.status_code == 202, confirmed.text
        await until_status(sataa, payment["id"], "succeeded")
        again = await finance.post(f"/api/v1/finance/payments/{payment['id']}/confirm", json={})
        assert again.status_code == 409
    finally:
        await finance.aclose()
    assert await status_of(sataa, invoice.id or 0) == "paid"
    db.expire_all()
    end = db.get(Company, invoice.company_id).subscription_end  # type: ignore[union-attr]
    start = max(date.today(), before) if before else date.today()
    assert end is not None and timedelta(days=364) <= end - start <= timedelta(days=366)
    detail = (await sataa.get(f"/api/v1/invoices/{invoice.id}")).json()
    confirmed_line = next(
        m for m in detail["messages"] if "confirmé par finance" in (m.get("observations") or "")
    )
    assert confirmed_line["user_name"] == "finance"


async def test_rejected_transfer_frees_the_invoice(
    stack: Stack, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    payment = await declare_transfer(sataa, [invoice.id or 0])
    finance = await login(stack.base_url, "finance")
    try:
        rejected = await finance.post(
            f"/api/v1/finance/payments/{payment['id']}/reject", json={"reason": "virement introuvable"}
        )
        assert rejected.status_code == 202
    finally:
        await finance.aclose()
    done = await until_status(sataa, payment["id"], "failed")
    assert "virement introuvable" in (done["error"] or "")
    assert await status_of(sataa, invoice.id or 0) == "unpaid"


async def test_blocking_an_invoice_stops_its_live_attempt_and_late_money_is_kept(
    stack: Stack,
    sataa: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    make_invoice: Callable[..., Invoice],
    db: Session,
) -> None:
    invoice = make_invoice()
    payment = await start_fatourati(sataa, [invoice.id or 0])
    finance = await login(stack.base_url, "finance")
    try:
        blocked = await finance.post(
            f"/api/v1/finance/invoices/{invoice.id}/block", json={"reason": "litige client"}
        )
        assert blocked.status_code == 200, blocked.text
        await until_status(sataa, payment["id"], "cancelled")
        assert await status_of(sataa, invoice.id or 0) == "blocked"
        late = await anonymous.post("/api/v1/callbacks/fatourati", json=callback_fields(payment, "FTRBLOCK1"))
        assert late.json()["status"] == "RECEIVED_UNAPPLIED"
        assert await status_of(sataa, invoice.id or 0) == "blocked"
        refused = await sataa.post(
            "/api/v1/payments", json={"invoice_ids": [invoice.id], "channel": "cmi_card"}
        )
        assert refused.status_code == 409
        unblocked = await finance.post(
            f"/api/v1/finance/invoices/{invoice.id}/unblock", json={"reason": "réglé"}
        )
        assert unblocked.json()["status"] == "unpaid"
    finally:
        await finance.aclose()
    detail = (await sataa.get(f"/api/v1/invoices/{invoice.id}")).json()
    names = [m["name"] for m in detail["messages"]]
    assert "FIN_INVOICE_BLOCK" in names and "FIN_INVOICE_UNBLOCK" in names


async def test_finance_applies_amanpay_money_from_its_page_and_reads_why_when_refused(
    stack: Stack,
    sataa: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    make_invoice: Callable[..., Invoice],
    db: Session,
) -> None:
    held, free = make_invoice(), make_invoice()
    attempt = await start_card_payment(sataa, [held.id or 0])
    # Amanpay notifies a cash payment (Tashilat) for an order we do not know: kept unapplied.
    s = get_settings()
    order, transaction = "PN" + secrets.token_hex(6).upper(), "TSH" + secrets.token_hex(5).upper()
    body = amanpay_protocol.dumps(
        {
            "merchant_id": s.amanpay_merchant_id,
            "order_id": order,
            "amount": "120.00",
            "status": "paid",
            "event_id": f"{order}-paid",
            "transaction_id": transaction,
            "channel": "tashilat",
        }
    )
    signature = amanpay_protocol.sign(s.amanpay_secret_key, amanpay_protocol.Message.NOTIFICATION, body)
    kept = await anonymous.post(
        "/api/v1/callbacks/amanpay",
        content=body,
        headers={"Content-Type": "application/json", amanpay_protocol.AMANPAY_HEADER: signature},
    )
    assert kept.json() == {"status": "unapplied"}
    row = db.exec(
        select(UnappliedPayment).where(UnappliedPayment.transaction_number == f"amanpay:{transaction}")
    ).one()
    assert row.channel == "amanpay_code"
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as browser:
        token = await logged_in(browser, "finance")
        listed = await browser.get("/finance/encaissements")
        assert "Amanpay code de paiement" in listed.text
        refused = await browser.post(
            f"/finance/encaissements/{row.id}/affecter",
            data={"csrf_token": token, "invoice_number": held.number},
            follow_redirects=True,
        )
        assert "Affectation refusée" in refused.text
        assert f"est en cours de paiement (tentative {attempt['id']})" in refused.text
        assert await status_of(sataa, held.id or 0) == "in_payment"
        applied = await browser.post(
            f"/finance/encaissements/{row.id}/affecter",
            data={"csrf_token": token, "invoice_number": free.number},
            follow_redirects=True,
        )
        assert f"Encaissement affecté à la facture {free.number}" in applied.text, applied.text
    assert await status_of(sataa, free.id or 0) == "paid"
    db.expire_all()
    payment = db.get(Payment, f"PNU{row.id:09d}")
    assert payment is not None and payment.channel == "amanpay_code" and payment.status == "succeeded"
    await sataa.post(f"/api/v1/payments/{attempt['id']}/cancel")
    await until_status(sataa, attempt["id"], "cancelled")
