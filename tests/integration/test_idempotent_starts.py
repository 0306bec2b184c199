"""Starting a payment with an Idempotency-Key, on the real stack (Stripe's rules).

The case the key exists for: the first start reached Temporal but its answer never reached the
payer (Temporal or the portal restarting). The retry must join that attempt — not be refused as a
conflict while the first one holds the invoices until its deadline.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlmodel import Session, col, select

from portnet.models import IdempotencyKey, Invoice, Payment, PaymentInvoice
from tests.support.api import Stack
from tests.support.pages import token_of


def card_request(invoice: Invoice) -> dict[str, Any]:
    return {
        "invoice_ids": [invoice.id],
        "channel": "cmi_card",
        "payer": {"name": "Yassine Alaoui", "email": "tresorerie@sataa.ma"},
    }


async def test_the_same_request_with_the_same_key_gives_the_same_attempt(
    stack: Stack, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await sataa.post("/api/v1/payments", json=card_request(invoice), headers=key)
    assert first.status_code == 201, first.text
    again = await sataa.post("/api/v1/payments", json=card_request(invoice), headers=key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    # Another request under the same key is refused, and starts nothing.
    other = await sataa.post(
        "/api/v1/payments", json={**card_request(invoice), "channel": "cheque"}, headers=key
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    links = db.exec(select(PaymentInvoice).where(PaymentInvoice.invoice_id == invoice.id)).all()
    assert [link.payment_id for link in links] == [first.json()["id"]]


async def test_a_retry_after_a_lost_answer_joins_the_attempt_the_first_start_began(
    stack: Stack, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    key = str(uuid.uuid4())
    first = await sataa.post("/api/v1/payments", json=card_request(invoice), headers={"Idempotency-Key": key})
    assert first.status_code == 201
    # The answer was lost: the portal died after the start reached Temporal, before keeping it.
    row = db.exec(select(IdempotencyKey).where(IdempotencyKey.key == key)).one()
    row.status_code, row.response_body = None, None
    db.add(row)
    db.commit()
    retry = await sataa.post("/api/v1/payments", json=card_request(invoice), headers={"Idempotency-Key": key})
    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == first.json()["id"] and retry.json()["status"] == "awaiting_payer"
    # Without the key, the same retry is what payers met before: the invoice is held, 409.
    unkeyed = await sataa.post("/api/v1/payments", json=card_request(invoice))
    assert unkeyed.status_code == 409
    db.expire_all()
    attempts = db.exec(
        select(Payment).join(PaymentInvoice).where(col(PaymentInvoice.invoice_id) == invoice.id)
    ).all()
    assert [p.id for p in attempts] == [first.json()["id"]]


async def test_a_refusal_is_kept_and_a_key_is_checked(
    stack: Stack, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    held = await sataa.post("/api/v1/payments", json=card_request(invoice))
    assert held.status_code == 201
    refused = await sataa.post("/api/v1/payments", json=card_request(invoice), headers=key)
    assert refused.status_code == 409
    again = await sataa.post("/api/v1/payments", json=card_request(invoice), headers=key)
    assert again.status_code == 409 and again.json() == refused.json()
    bad = await sataa.post("/api/v1/payments", json=card_request(invoice), headers={"Idempotency-Key": "a b"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_idempotency_key"


async def test_the_confirmation_form_submitted_twice_starts_one_attempt(
    stack: Stack, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    confirmation = await sataa.post(
        "/paiements/confirmation",
        data={"csrf_token": token_of((await sataa.get("/factures")).text), "invoice_ids": str(invoice.id)},
    )
    key = re.search(r'name="idempotency_key" value="([^"]+)"', confirmation.text)
    assert key is not None
    form = {
        "csrf_token": token_of(confirmation.text),
        "idempotency_key": key.group(1),
        "invoice_ids": str(invoice.id),
        "channel": "cheque",
        "payer_name": "Comptabilité SATAA",
        "payer_email": "sataa@demo.portnet.ma",
        "cheque_number": "7654321",
        "bank": "CIH Bank",
    }
    first, second = await sataa.post("/paiements", data=form), await sataa.post("/paiements", data=form)
    assert first.status_code == second.status_code == 303, second.text
    assert first.headers["location"] == second.headers["location"]
    links = db.exec(select(PaymentInvoice).where(PaymentInvoice.invoice_id == invoice.id)).all()
    assert len(links) == 1
