"""An emitter's acknowledgement that arrives after the payment's workflow closed still marks paid.

The workflow waits for acknowledgements until its deadline, then ends; an emitter that answers later
(its own outage, a queue drained days after) signals a workflow Temporal reports NOT_FOUND. The
ledger then applies the acknowledgement itself, for a settled payment only, once per invoice.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, select

from portnet.models import Invoice, InvoiceMessage, PartnerCallback, Payment
from portnet.protocols import emitter as emitter_protocol
from portnet.settings import get_settings
from tests.support.partners import ClosedWorkflows, Ledger, Portal

EMITTER = "6110DOO116"  # the emitter of the test invoices (tests/conftest.py make_invoice)


def ended_as(db: Session, ledger: Ledger, payment_status: str, invoice_status: str) -> None:
    payment, invoice = db.get(Payment, ledger.payment_id), db.get(Invoice, ledger.invoice_id)
    assert payment is not None and invoice is not None
    payment.status, invoice.status = payment_status, invoice_status
    db.add(payment)
    db.add(invoice)
    db.commit()


def acknowledge(client: Portal, payment_id: str, ack_id: str = "6110DOO116-ACK-0A1B2C3D4E5F") -> Any:
    body = json.dumps(
        {
            "notice_id": emitter_protocol.notice_id(payment_id, EMITTER),
            "emitter_code": EMITTER,
            "emitter_ack_id": ack_id,
            "acknowledged_at": "2026-12-09T10:20:00+00:00",
        },
        separators=(",", ":"),
    ).encode()
    signature = emitter_protocol.sign(get_settings().emitter_shared_key, emitter_protocol.Message.ACK, body)
    client.app.state.temporal = ClosedWorkflows()
    answer = client.post(
        "/api/v1/callbacks/emitters/ack",
        body,
        {"Content-Type": "application/json", emitter_protocol.SIGNATURE_HEADER: signature},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def status_of(db: Session, invoice_id: int) -> str | None:
    db.expire_all()
    invoice = db.get(Invoice, invoice_id)
    return invoice.status if invoice else None


def paid_messages(db: Session, invoice_id: int) -> int:
    paid = select(InvoiceMessage).where(
        InvoiceMessage.invoice_id == invoice_id, InvoiceMessage.name == "INV_PAID"
    )
    return len(db.exec(paid).all())


def test_late_acknowledgement_of_a_settled_payment_marks_its_invoices_paid(
    client: Portal, db: Session, ledger: Ledger
) -> None:
    ended_as(db, ledger, "succeeded", "awaiting_partner")
    assert acknowledge(client, ledger.payment_id) == {"status": "acknowledged"}
    assert status_of(db, ledger.invoice_id) == "paid"
    assert paid_messages(db, ledger.invoice_id) == 1
    row = db.exec(select(PartnerCallback).where(PartnerCallback.payment_id == ledger.payment_id)).one()
    assert (row.verdict, row.answer) == ("accepted_late", "200")
    # The emitter sends it again: answered from the inbox, nothing written twice.
    assert acknowledge(client, ledger.payment_id) == {"status": "already_acknowledged"}
    assert paid_messages(db, ledger.invoice_id) == 1


def test_late_acknowledgement_of_a_payment_that_never_settled_changes_nothing(
    client: Portal, db: Session, ledger: Ledger
) -> None:
    ended_as(db, ledger, "expired", "unpaid")
    assert acknowledge(client, ledger.payment_id) == {"status": "late"}
    assert status_of(db, ledger.invoice_id) == "unpaid"
    assert paid_messages(db, ledger.invoice_id) == 0
