"""The payment receipt: its number, its verification code, and the PDF that proves the payment.

A module of its own beside the ledger's activities. Attempts begun on rule ``receipt-after-settlement``
get their receipt from ``issue_receipt``, an activity of its own run after the settlement committed:
laying a receipt out takes fpdf2 tens of milliseconds of CPU, which the payer no longer waits for
before seeing "succeeded". Older attempts and unapplied money still get it from the settlement, which
lays the PDF out before it writes anything and stores it in the same transaction. The Fatourati
channel quotes the number in its answer to CMI. Issuing the receipt records its verification code's
hash on the payment (portnet/receipt_codes.py), in the same transaction as the PDF that prints the
code: a receipt that exists can be verified.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.types import IssuedReceipt, SettleInput
from portnet import documents, i18n, receipt_codes
from portnet.db import session_scope
from portnet.localtime import to_local
from portnet.models import Company, Document, Emitter, Invoice, Payment, User
from portnet.queries import payment_invoices
from portnet.settings import get_settings
from portnet.statuses import Channel, PaymentStatus


def receipt_number(payment_id: str) -> str:
    """The number printed on the receipt; Fatourati's answer to CMI quotes it too."""
    return f"REC-{payment_id}"


def issue_receipt_code(payment: Payment, secret_key: str) -> str:
    """The receipt's verification code; its hash is recorded on the payment (once: the same code)."""
    code = receipt_codes.receipt_code(payment.id, secret_key)
    if payment.receipt_code_hash is None:
        payment.receipt_code_hash = receipt_codes.code_hash(code)
    return code


def render_receipt(
    session: Session,
    payment: Payment,
    rows: Sequence[tuple[Invoice, Emitter]],
    inp: SettleInput,
    paid_at: datetime,
) -> bytes:
    """The receipt's PDF for a settlement at ``paid_at``, laid out before the settlement writes."""
    company = session.get(Company, payment.company_id)
    assert company is not None
    payer = session.get(User, payment.user_id) if payment.user_id is not None else None
    settings = get_settings()
    code = receipt_codes.receipt_code(payment.id, settings.secret_key)
    return documents.render_receipt_pdf(
        documents.ReceiptDocument(
            receipt_number=receipt_number(payment.id),
            payment_id=payment.id,
            channel_label=Channel(payment.channel).label,
            paid_at=to_local(paid_at),
            client=documents.ClientInfo(company.name, company.customs_code, company.ice, company.address),
            invoices=[documents.PaidInvoiceItem(inv.number, em.name, inv.amount_ttc) for inv, em in rows],
            total_paid=payment.amount,
            partner_transaction_id=inp.transaction_id,
            authorization_code=inp.auth_code,
            card_number=inp.masked_pan,
            payer_name=inp.payer.name,
            payer_email=inp.payer.email,
            # The payer's profile language; French when never chosen (or money applied by finance).
            language=i18n.normalize(payer.language if payer else None) or i18n.DEFAULT_LANGUAGE,
            verification_url=receipt_codes.verification_url(settings.public_base_url, code),
            verification_code=receipt_codes.format_code(code),
            verification_page=receipt_codes.verification_page(settings.public_base_url),
        )
    )


def store_receipt(session: Session, payment: Payment, pdf: bytes) -> Document:
    """The rendered receipt, with its code's hash on the payment, in the settlement's transaction."""
    assert payment.paid_at is not None
    issue_receipt_code(payment, get_settings().secret_key)
    session.add(payment)
    doc = Document(
        payment_id=payment.id,
        kind="receipt",
        name=f"RECU_{payment.id}.pdf",
        description="Reçu de paiement",
        content=pdf,
        created_at=payment.paid_at,
    )
    session.add(doc)
    session.flush()
    return doc


@activity.defn
def issue_receipt(inp: SettleInput) -> IssuedReceipt:
    """The receipt of a settled payment, laid out and stored once the settlement has committed.

    ``inp`` is what the settlement was given (the transaction, the card, the payer): the receipt
    prints it. Idempotent: a retry after a commit whose completion was never reported finds the
    receipt stored and returns it. The PDF is laid out before anything is written, so no write lock
    is held (SQLite has one) while fpdf2 works. A payment that was never settled gets no receipt.
    """
    with session_scope() as session:
        payment = session.get(Payment, inp.payment_id)
        if payment is None:
            raise ApplicationError(f"payment {inp.payment_id} not found", non_retryable=True)
        stored = session.exec(
            select(Document.id).where(Document.payment_id == payment.id, Document.kind == "receipt")
        ).first()
        if stored is not None:
            return IssuedReceipt(document_id=stored, receipt_number=receipt_number(payment.id))
        if payment.status != PaymentStatus.SUCCEEDED.value or payment.paid_at is None:
            raise ApplicationError(
                f"payment {payment.id} is {payment.status}: no receipt before a settlement",
                type="BusinessRefusal",
                non_retryable=True,
            )
        rows = [(inv, em) for inv, em, _ in payment_invoices(session, payment.id)]
        pdf = render_receipt(session, payment, rows, inp, payment.paid_at)
        # The first write takes the payment's row (PostgreSQL) or the database (SQLite) for this
        # transaction; a run that overlaps this one (a retry started after a timeout while this one
        # waited for the lock) then finds, looking again, the receipt the other stored.
        code = receipt_codes.receipt_code(payment.id, get_settings().secret_key)
        session.execute(
            sa.update(Payment)
            .where(col(Payment.id) == payment.id)
            .values(receipt_code_hash=receipt_codes.code_hash(code))
        )
        stored = session.exec(
            select(Document.id).where(Document.payment_id == payment.id, Document.kind == "receipt")
        ).first()
        if stored is not None:
            return IssuedReceipt(document_id=stored, receipt_number=receipt_number(payment.id))
        doc = store_receipt(session, payment, pdf)
        assert doc.id is not None
        return IssuedReceipt(document_id=doc.id, receipt_number=receipt_number(payment.id))


ACTIVITIES: list[Callable[..., Any]] = [issue_receipt]
