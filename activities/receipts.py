"""The payment receipt: its number, and the PDF stored with the settlement (what was issued).

A module of its own beside the ledger's activities: the settlement writes the receipt's row in its
own transaction and renders the PDF right after it commits; the Fatourati channel quotes the number
in its answer to CMI.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import Session, col

from activities.types import SettleInput
from portnet import documents
from portnet.db import session_scope
from portnet.localtime import to_local
from portnet.models import Company, Document, Emitter, Invoice, Payment
from portnet.statuses import Channel


def receipt_number(payment_id: str) -> str:
    """The number printed on the receipt; Fatourati's answer to CMI quotes it too."""
    return f"REC-{payment_id}"


def receipt_fields(
    session: Session, payment: Payment, rows: Sequence[tuple[Invoice, Emitter]], inp: SettleInput
) -> documents.ReceiptDocument:
    """What the receipt prints, read in the settlement's transaction."""
    company = session.get(Company, payment.company_id)
    assert company is not None and payment.paid_at is not None
    return documents.ReceiptDocument(
        receipt_number=receipt_number(payment.id),
        payment_id=payment.id,
        channel_label=Channel(payment.channel).label,
        paid_at=to_local(payment.paid_at),
        client=documents.ClientInfo(company.name, company.customs_code, company.ice, company.address),
        invoices=[documents.PaidInvoiceItem(inv.number, em.name, inv.amount_ttc) for inv, em in rows],
        total_paid=payment.amount,
        partner_transaction_id=inp.transaction_id,
        authorization_code=inp.auth_code,
        card_number=inp.masked_pan,
        payer_name=inp.payer.name,
        payer_email=inp.payer.email,
    )


def store_receipt(session: Session, payment: Payment) -> Document:
    """The receipt's row, written with the settlement; its PDF comes right after (``render_receipt``)."""
    assert payment.paid_at is not None
    doc = Document(
        payment_id=payment.id,
        kind="receipt",
        name=f"RECU_{payment.id}.pdf",
        description="Reçu de paiement",
        content=None,
        created_at=payment.paid_at,
    )
    session.add(doc)
    session.flush()
    return doc


def render_receipt(document_id: int, fields: documents.ReceiptDocument) -> None:
    """Renders the PDF once the settlement is committed and stores it (first one wins).

    Outside the settlement's transaction: rendering takes tens of milliseconds of CPU, and on SQLite
    a transaction that has written holds the database's only write lock until it commits.
    """
    pdf = documents.render_receipt_pdf(fields)
    with session_scope() as session:
        session.execute(
            sa.update(Document)
            .where(col(Document.id) == document_id, col(Document.content).is_(None))
            .values(content=pdf)
        )
