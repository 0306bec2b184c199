"""CMI Fatourati end to end on the dev server: API -> token at the sandbox -> bank channel ->
signed callback -> settled; and the edges around the deadline, with the real HTTP callbacks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlmodel import Session, col, select

from portnet.models import Invoice, PartnerCallback, UnappliedPayment
from portnet.protocols import fatourati as proto
from portnet.settings import get_settings
from tests.support.api import (
    Stack,
    callback_fields,
    login,
    sandbox_url,
    start_fatourati,
    status_of,
    until_status,
)
from tests.support.workers import eventually


@contextmanager
def short_reference(stack: Stack, seconds: int, reminder_before: int = 0) -> Iterator[None]:
    """Attempts started meanwhile get a reference that lives ``seconds`` (the setting, per app)."""
    saved = stack.app.state.settings
    stack.app.state.settings = saved.model_copy(
        update={"fatourati_expiry_seconds": seconds, "fatourati_reminder_before_seconds": reminder_before}
    )
    try:
        yield
    finally:
        stack.app.state.settings = saved


async def check_status(anonymous: httpx.AsyncClient, reference: str) -> str:
    settings = get_settings()
    fields = {
        "merchantCode": settings.fatourati_merchant_code,
        "storeId": settings.fatourati_store_id,
        "tokenRef": reference,
    }
    response = await anonymous.post(
        "/api/v1/callbacks/fatourati/status",
        json=proto.signed(fields, proto.STATUS_REQUEST, settings.fatourati_api_key),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert proto.verify(body, proto.STATUS_ANSWER, settings.fatourati_api_key)
    return str(body["status"])


async def test_two_invoices_paid_with_one_reference_from_a_bank_channel(
    stack: Stack, sataa: httpx.AsyncClient, anonymous: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    a, b = make_invoice(ht="1000.00", tva="200.00"), make_invoice(ht="500.00", tva="100.00")
    payment = await start_fatourati(sataa, [a.id or 0, b.id or 0])
    reference = payment["next_action"]["fields"]["reference"]
    assert len(reference) == 13 and reference.isdigit() and payment["amount"] == "1800.00"
    assert await status_of(sataa, a.id or 0) == "in_payment"
    assert await check_status(anonymous, reference) == "PENDING"
    token = (await anonymous.get(sandbox_url(f"/sandbox/fatourati/api/tokens/{reference}"))).json()
    assert token["status"] == "PENDING" and token["amount"] == "1800.00"

    # AttijariNet asks for the amount too; a wrong one is refused by the bank, nothing reaches us.
    wrong = await anonymous.post(
        sandbox_url("/sandbox/fatourati/payments"),
        json={"reference": reference, "amount": "1700.00", "channel": "attijarinet"},
    )
    assert wrong.json()["result"] == "refused"
    paid = (
        await anonymous.post(
            sandbox_url("/sandbox/fatourati/payments"),
            json={"reference": reference, "amount": "1800.00", "channel": "attijarinet"},
        )
    ).json()
    assert paid["result"] == "paid", paid
    assert (
        paid["merchant_status"] == 200 and paid["merchant_answer"]["receiptNumber"] == f"REC-{payment['id']}"
    )
    assert paid["merchant_answer_verified"] is True  # CMI checked our answer's signature, status included
    done = await until_status(sataa, payment["id"], "succeeded")
    assert done["transaction_id"] == paid["transaction_number"]
    assert await status_of(sataa, a.id or 0) == await status_of(sataa, b.id or 0) == "paid"
    assert await check_status(anonymous, reference) == "PAID"

    # The same reference cannot be paid twice at the bank.
    again = (
        await anonymous.post(
            sandbox_url("/sandbox/fatourati/payments"), json={"reference": reference, "channel": "cih"}
        )
    ).json()
    assert again["result"] == "refused"

    async def mails() -> list[dict[str, Any]] | None:
        messages: list[dict[str, Any]] = (
            await anonymous.get(sandbox_url("/sandbox/mail"), params={"to": "tresorerie@sataa.ma"})
        ).json()
        found = [
            m
            for m in messages
            if reference in (m.get("text") or "") or payment["id"] in (m.get("text") or "")
        ]
        return found if len(found) >= 2 else None

    subjects = [m["subject"] for m in await eventually(mails, timeout=30)]
    assert any(reference in s for s in subjects) and any("Paiement confirmé" in s for s in subjects)


async def test_duplicate_and_forged_callbacks(
    stack: Stack,
    sataa: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    make_invoice: Callable[..., Invoice],
    db: Session,
) -> None:
    invoice = make_invoice()
    payment = await start_fatourati(sataa, [invoice.id or 0])

    forged = callback_fields(payment, "FTRFORGED1")
    forged["signature"] = "0" * 64
    response = await anonymous.post("/api/v1/callbacks/fatourati", json=forged)
    assert response.status_code == 401
    assert await status_of(sataa, invoice.id or 0) == "in_payment"
    verdicts = {
        json.loads(c.payload).get("transactionNumber"): c.verdict
        for c in db.exec(select(PartnerCallback).where(PartnerCallback.payment_id == payment["id"])).all()
    }
    assert verdicts == {"FTRFORGED1": "bad_signature"}

    refused = await anonymous.post(
        "/api/v1/callbacks/fatourati", json=callback_fields(payment, "FTRREF1", code="1")
    )
    assert refused.status_code == 200 and refused.json()["status"] == "RECORDED"
    assert await status_of(sataa, invoice.id or 0) == "in_payment"

    fields = callback_fields(payment, "FTRDUP1")
    answers = await asyncio.gather(
        *[anonymous.post("/api/v1/callbacks/fatourati", json=fields) for _ in range(4)]
    )
    assert {r.status_code for r in answers} == {200}
    assert {r.json()["receiptNumber"] for r in answers} == {f"REC-{payment['id']}"}
    await until_status(sataa, payment["id"], "succeeded")
    db.expire_all()
    assert db.exec(select(UnappliedPayment).where(UnappliedPayment.payment_id == payment["id"])).all() == []
    # A different transaction on the already paid reference is money for finance, not a second settlement.
    second = await anonymous.post("/api/v1/callbacks/fatourati", json=callback_fields(payment, "FTRDUP2"))
    assert second.status_code == 200 and second.json()["status"] == "RECEIVED_UNAPPLIED"
    db.expire_all()
    rows = db.exec(select(UnappliedPayment).where(UnappliedPayment.payment_id == payment["id"])).all()
    assert [r.transaction_number for r in rows] == ["FTRDUP2"]


async def test_payment_of_another_amount_is_kept_for_finance_and_the_invoices_released(
    stack: Stack,
    sataa: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    make_invoice: Callable[..., Invoice],
    db: Session,
) -> None:
    """CMI collected 1.00 on a reference of the invoice's amount: the money is finance's (unapplied,
    with the reason), CMI gets its signed acknowledgement, the attempt never settles on it and gives
    the invoice back at once."""
    invoice = make_invoice()
    payment = await start_fatourati(sataa, [invoice.id or 0])
    other = callback_fields(payment, "FTROTHER1", amount="1.00")
    response = await anonymous.post("/api/v1/callbacks/fatourati", json=other)
    assert response.status_code == 200 and response.json()["status"] == "RECEIVED_UNAPPLIED"
    assert proto.verify(response.json(), proto.CALLBACK_ANSWER, get_settings().fatourati_api_key)
    done = await until_status(sataa, payment["id"], "cancelled")
    assert done["transaction_id"] is None
    assert await status_of(sataa, invoice.id or 0) == "unpaid"
    again = await anonymous.post("/api/v1/callbacks/fatourati", json=other)
    assert again.json()["receiptNumber"] == response.json()["receiptNumber"]
    db.expire_all()
    [kept] = db.exec(select(UnappliedPayment).where(UnappliedPayment.payment_id == payment["id"])).all()
    assert (kept.transaction_number, str(kept.amount), kept.status) == ("FTROTHER1", "1.00", "open")
    assert kept.reason.startswith("Montant différent de la demande : attendu ")
    verdicts = [
        c.verdict
        for c in db.exec(select(PartnerCallback).where(PartnerCallback.payment_id == payment["id"])).all()
    ]
    assert sorted(verdicts) == ["replay", "unapplied"]


async def test_expired_reference_is_refused_cancelled_and_a_late_callback_kept_unapplied(
    stack: Stack,
    sataa: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    make_invoice: Callable[..., Invoice],
    db: Session,
) -> None:
    a, b = make_invoice(), make_invoice()
    with short_reference(stack, 3):
        payment = await start_fatourati(sataa, [a.id or 0, b.id or 0])
    reference = payment["next_action"]["fields"]["reference"]
    await until_status(sataa, payment["id"], "expired")
    assert await status_of(sataa, a.id or 0) == await status_of(sataa, b.id or 0) == "unpaid"
    token = (await anonymous.get(sandbox_url(f"/sandbox/fatourati/api/tokens/{reference}"))).json()
    assert token["status"] in ("CANCELLED", "EXPIRED")
    refused = (
        await anonymous.post(
            sandbox_url("/sandbox/fatourati/payments"), json={"reference": reference, "channel": "cih"}
        )
    ).json()
    assert refused["result"] == "refused"
    assert await check_status(anonymous, reference) == "EXPIRED"

    # CMI had taken the money just before the deadline; its callback reaches us after it.
    late = await anonymous.post("/api/v1/callbacks/fatourati", json=callback_fields(payment, "FTRLATE1"))
    assert late.status_code == 200 and late.json()["status"] == "RECEIVED_UNAPPLIED"
    assert late.json()["receiptNumber"].startswith("ENC-")
    assert await status_of(sataa, a.id or 0) == "unpaid"
    # Redelivered: same answer, one row.
    again = await anonymous.post("/api/v1/callbacks/fatourati", json=callback_fields(payment, "FTRLATE1"))
    assert again.json()["receiptNumber"] == late.json()["receiptNumber"]

    finance = await login(stack.base_url, "finance")
    try:
        listed = (await finance.get("/api/v1/finance/unapplied", params={"status": "open"})).json()
        row = next(r for r in listed["items"] if r["transaction_number"] == "FTRLATE1")
        assert row["amount"] == "240.00" and row["payment_id"] == payment["id"]
        applied = await finance.post(
            f"/api/v1/finance/unapplied/{row['id']}/apply", json={"invoice_number": a.number}
        )
        assert applied.status_code == 200, applied.text
        assert await status_of(sataa, a.id or 0) == "paid"
        twice = await finance.post(
            f"/api/v1/finance/unapplied/{row['id']}/apply", json={"invoice_number": b.number}
        )
        assert twice.status_code == 409
    finally:
        await finance.aclose()


async def test_callbacks_racing_the_deadline_are_settled_once_or_kept(
    stack: Stack,
    sataa: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    make_invoice: Callable[..., Invoice],
    db: Session,
) -> None:
    """Payments sent around the deadline: at most one settles, every other one is kept for finance."""
    outcomes: list[str] = []
    for round_ in range(3):
        invoice = make_invoice()
        with short_reference(stack, 2):
            payment = await start_fatourati(sataa, [invoice.id or 0])
        deadline = datetime.fromisoformat(payment["next_action"]["fields"]["expires_at"])
        wait = (deadline - datetime.now(UTC)).total_seconds() - 0.15
        await asyncio.sleep(max(wait, 0))
        sent = []
        for i in range(6):
            sent.append(
                asyncio.create_task(
                    anonymous.post(
                        "/api/v1/callbacks/fatourati", json=callback_fields(payment, f"FTRRACE{round_}{i}")
                    )
                )
            )
            await asyncio.sleep(0.05)
        answers = [(await t).json() for t in sent]
        final = await until_status(sataa, payment["id"], "succeeded", "expired")
        accepted = [a for a in answers if a["status"] == "ACCEPTED"]
        kept = [a for a in answers if a["status"] == "RECEIVED_UNAPPLIED"]
        assert len(accepted) + len(kept) == 6  # nothing dropped
        db.expire_all()
        rows = db.exec(
            select(UnappliedPayment)
            .where(UnappliedPayment.payment_id == payment["id"])
            .order_by(col(UnappliedPayment.id))
        ).all()
        assert len(rows) == len(kept)
        if final["status"] == "succeeded":
            assert len(accepted) == 1 and await status_of(sataa, invoice.id or 0) == "paid"
        else:
            assert accepted == [] and await status_of(sataa, invoice.id or 0) == "unpaid"
        outcomes.append(final["status"])
    assert set(outcomes) <= {"succeeded", "expired"}
