"""The payment receipt: its number, its verification code, and the PDF stored with the settlement.

A module of its own beside the ledger's activities: the settlement lays the PDF out before it writes
anything, then stores it in its own transaction; the Fatourati channel quotes the number in its
answer to CMI. Issuing the receipt records its verification code's hash on the payment
(portnet/receipt_codes.py), in the same transaction as the PDF that prints the code: a receipt that
exists can be verified.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from activities.types import SettleInput
from portnet import documents, i18n, receipt_codes
from portnet.localtime import to_local
from portnet.models import Company, Document, Emitter, Invoice, Payment, User
from portnet.settings import get_settings
from portnet.statuses import Channel


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
