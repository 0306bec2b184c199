"""Payment history of the demo: what a paid invoice and the guide's 00069321 show in their logs.

- Every seeded "Facture payée" gets the attempt that paid it: a ``payment`` row (succeeded, paid by
  its company's demo user through the first channel its methods allow, a few days after issue, its
  receipt's verification code recorded),
  its ``payment_invoice`` link and the message lines a live payment writes (request, confirmation,
  paid), so its "Données paiement" and "Liste des messages" are not empty.
- 00069321 gets the guide's history [204-206]: three earlier Amanpay attempts by user ``yary`` on
  22/12/2017, each leaving the invoice "Non Réglée".

Like the rest of the seed, written only where missing: a paid invoice that already has a payment
link is left alone, and the guide's lines are keyed (``dedupe_key``) so they are written once.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from portnet import receipt_codes
from portnet.messagelog import append_message
from portnet.models import Company, Emitter, Invoice, InvoiceMessage, Payment, PaymentInvoice, User
from portnet.seed.catalogue import BENCH_NUMBER_OFFSET, PROFILES
from portnet.settings import get_settings
from portnet.statuses import Channel, InvoiceStatus, PaymentStatus

GUIDE_INVOICE = "00069321"
GUIDE_PAYER = "yary"
# The guide's three attempts (Casablanca time, which was UTC in December 2017).
GUIDE_ATTEMPTS = (
    datetime(2017, 12, 22, 10, 0),
    datetime(2017, 12, 22, 10, 4),
    datetime(2017, 12, 22, 11, 53),
)
METHOD_CHANNEL = {
    "cmi": Channel.CMI_CARD,
    "amanpay": Channel.AMANPAY_CODE,
    "virement": Channel.BANK_TRANSFER,
    "cheque": Channel.CHEQUE,
}
RECEIVER = {"CMI": "CMI", "AMA": "Amanpay", "FIN": "PortNet"}


def demo_payment_id(invoice_id: int) -> str:
    """``PN`` + 12 hex digits, like a live attempt's, derived from the invoice (stable across runs)."""
    return "PN" + hashlib.sha256(f"demo-payment:{invoice_id}".encode()).hexdigest()[:12].upper()


def _paid_at(invoice: Invoice) -> datetime:
    assert invoice.id is not None
    days = 1 + invoice.id % 20
    return invoice.invoice_date + timedelta(days=days, hours=9 + invoice.id % 8, minutes=invoice.id % 60)


def _demo_numbers() -> Any:
    """The demo's own invoice numbers (each emitter's range below the benchmarks' bulk invoices)."""
    return sa.or_(
        *(
            sa.and_(
                col(Emitter.code) == profile.code,
                col(Invoice.number) >= f"{profile.number_base:08d}",
                col(Invoice.number) < f"{profile.number_base + BENCH_NUMBER_OFFSET:08d}",
            )
            for profile in PROFILES
        )
    )


def ensure_paid_history(session: Session, created: Counter[str]) -> None:
    """A payment and its message lines for every paid demo invoice that has none (not the
    benchmarks' bulk invoices: a million payments is not what they measure).

    Written in bulk: one flush for the payments and their links, one read of the invoices' last
    line numbers, one executemany insert of the lines. Line by line (``append_message``), this was
    most of the seed's time, and the suite seeds a database in every test process."""
    linked = select(PaymentInvoice.invoice_id)
    rows = session.exec(
        select(Invoice, Emitter)
        .join(Emitter, col(Emitter.id) == Invoice.emitter_id)
        .where(Invoice.status == InvoiceStatus.PAID.value, col(Invoice.id).not_in(linked), _demo_numbers())
        .order_by(col(Invoice.id))
    ).all()
    if not rows:
        return
    payers = {
        u.company_id: u
        for u in session.exec(select(User).where(User.role == "client").order_by(col(User.id).desc())).all()
    }
    secret_key = get_settings().secret_key
    lines: list[dict[str, Any]] = []
    for invoice, emitter in rows:
        assert invoice.id is not None
        methods = [m for m in invoice.payment_methods.split(",") if m in METHOD_CHANNEL]
        channel = METHOD_CHANNEL[methods[0] if methods else "cmi"]
        function = channel.message_function
        payer = payers.get(invoice.company_id)
        paid_at = _paid_at(invoice)
        payment_id = demo_payment_id(invoice.id)
        session.add(
            Payment(
                id=payment_id,
                workflow_id=f"demo-{payment_id}",
                channel=channel.value,
                amount=invoice.amount_ttc,
                status=PaymentStatus.SUCCEEDED.value,
                company_id=invoice.company_id,
                user_id=payer.id if payer else None,
                emitter_codes=emitter.code,
                invoice_numbers=invoice.number,
                payer_email=payer.email if payer else None,
                partner_transaction_id=f"T{payment_id[2:]}",
                created_at=paid_at - timedelta(minutes=3),
                updated_at=paid_at,
                paid_at=paid_at,
                # Its receipt verifies like a live one's (/verification/<code>).
                receipt_code_hash=receipt_codes.code_hash(receipt_codes.receipt_code(payment_id, secret_key)),
            )
        )
        session.add(
            PaymentInvoice(
                payment_id=payment_id, invoice_id=invoice.id, amount_ttc=invoice.amount_ttc, in_force=True
            )
        )
        user_name = payer.username if payer else None
        receiver = RECEIVER.get(function)
        # In the order a live payment writes them: request, confirmation, then the invoice paid.
        for name, state, observations, minutes, line_user, line_receiver, line_function in (
            (
                f"{function}_PAY_REQ",
                InvoiceStatus.UNPAID,
                f"Reglement des factures: {invoice.number}",
                -3,
                user_name,
                receiver,
                function,
            ),
            (
                f"{function}_PAY_OK",
                InvoiceStatus.PAYMENT_CONFIRMED,
                f"Paiement confirmé, transaction T{payment_id[2:]}",
                0,
                user_name,
                receiver,
                function,
            ),
            ("INV_PAID", InvoiceStatus.PAID, "Facture payée", 1, None, emitter.name, "INV"),
        ):
            lines.append(
                {
                    "invoice_id": invoice.id,
                    "function": line_function,
                    "name": name,
                    "state": state.value,
                    "observations": observations,
                    "user_name": line_user,
                    "receiver": line_receiver,
                    "needs_reply": False,
                    "payment_id": payment_id,
                    "dedupe_key": None,
                    "created_at": paid_at + timedelta(minutes=minutes),
                }
            )
    session.flush()
    _number_after_the_last(session, lines)
    session.execute(sa.insert(InvoiceMessage.__table__), lines)  # type: ignore[attr-defined]
    created["payments"] += len(rows)
    created["invoice_messages"] += len(lines)


def _number_after_the_last(session: Session, lines: list[dict[str, Any]]) -> None:
    """Each line's ``seq``: its invoice's next numbers after the lines already written (gap-free,
    as ``portnet.messagelog.append_message`` numbers them)."""
    messages = InvoiceMessage.__table__  # type: ignore[attr-defined]
    invoice_ids = sorted({line["invoice_id"] for line in lines})
    last: dict[int, int] = {}
    for chunk in range(0, len(invoice_ids), 500):
        ids = invoice_ids[chunk : chunk + 500]
        last.update(
            session.execute(
                sa.select(messages.c.invoice_id, sa.func.max(messages.c.seq))
                .where(messages.c.invoice_id.in_(ids))
                .group_by(messages.c.invoice_id)
            ).all()
        )
    for line in lines:
        last[line["invoice_id"]] = last.get(line["invoice_id"], 0) + 1
        line["seq"] = last[line["invoice_id"]]


def ensure_guide_attempts(session: Session, created: Counter[str]) -> None:
    """00069321's three Amanpay attempts by yary, as the guide's message list shows them."""
    company = session.exec(select(Company).where(Company.customs_code == "290240")).first()
    if company is None:
        return
    invoice = session.exec(
        select(Invoice).where(Invoice.number == GUIDE_INVOICE, Invoice.company_id == company.id)
    ).first()
    if invoice is None or invoice.id is None:
        return
    for n, at in enumerate(GUIDE_ATTEMPTS, start=1):
        written = append_message(
            session,
            invoice.id,
            function="AMA",
            name=None,
            state=InvoiceStatus.UNPAID.value,
            observations=f"Reglement des factures: {GUIDE_INVOICE}",
            user_name=GUIDE_PAYER,
            receiver="Amanpay",
            dedupe_key=f"guide:{GUIDE_INVOICE}:attempt:{n}",
            at=at,
        )
        if written:
            created["invoice_messages"] += 1


def paid_without_payment(session: Session) -> int:
    """How many paid demo invoices still lack their payment (0 once the seed ran)."""
    linked = select(PaymentInvoice.invoice_id)
    return int(
        session.exec(
            select(sa.func.count())
            .select_from(Invoice)
            .join(Emitter, col(Emitter.id) == Invoice.emitter_id)
            .where(
                Invoice.status == InvoiceStatus.PAID.value, col(Invoice.id).not_in(linked), _demo_numbers()
            )
        ).one()
    )
