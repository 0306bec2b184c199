"""Applying unapplied money to an invoice: the ledger steps of ``ApplyUnappliedWorkflow``.

An application is a payment like any other: the invoice is held with the same ``InvoiceHold`` as a
payment attempt (so never while a live attempt holds it, never once it is paid), then settled by
``ledger.settle_payment`` (payment succeeded, invoice confirmed or paid, receipt, message log) on
the money's OWN channel, then the unapplied row is marked applied. Each step is one transaction and
idempotent: Temporal may run one again after a crash between its commit and its report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from temporalio import activity

from activities.ledger import HELD_ELSEWHERE, Refusal, hold_invoices
from activities.types import ReserveInput
from portnet import unapplied
from portnet.db import session_scope
from portnet.messagelog import append_message
from portnet.models import Company, Emitter, Invoice, InvoiceHold, Payment, PaymentInvoice, UnappliedPayment
from portnet.money import api_amount
from portnet.statuses import PAYABLE_STATUSES, InvoiceStatus


@dataclass
class UnappliedHoldInput:
    unapplied_id: int
    invoice_number: str
    user_id: int | None
    user_name: str


@dataclass
class UnappliedHold:
    """The invoice held for the money (``ok``), or why not: a stable code and a French sentence."""

    ok: bool
    payment_id: str = ""
    channel: str = ""
    transaction_id: str = ""
    paid_at: str = ""  # ISO 8601: when the payer paid (or, unknown, when the money reached us)
    amount: str = "0.00"
    invoice_id: int = 0
    invoice_number: str = ""
    settles_directly: bool = False
    payer_name: str = ""
    payer_email: str = ""
    # not_found | ambiguous | conflict | held | amount | decided
    error_code: str | None = None
    error: str | None = None


@dataclass
class MarkAppliedInput:
    unapplied_id: int
    payment_id: str
    invoice_id: int
    invoice_number: str
    user_name: str


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _invoice(session: Session, number: str) -> tuple[Invoice, Emitter]:
    found = session.exec(
        select(Invoice, Emitter)
        .join(Emitter, col(Emitter.id) == Invoice.emitter_id)
        .where(Invoice.number == number.strip())
    ).all()
    if not found:
        raise _Refused("not_found", "Facture introuvable.")
    if len(found) > 1:
        raise _Refused("ambiguous", "Facture introuvable (ou numéro ambigu).")
    return found[0]


def _check(session: Session, row: UnappliedPayment, invoice: Invoice) -> None:
    """The refusals finance must read plainly; the hold's primary key stays the arbiter of races."""
    assert invoice.id is not None
    hold = session.get(InvoiceHold, invoice.id)
    if hold is not None:
        raise _Refused(
            "held",
            f"La facture {invoice.number} est en cours de paiement (tentative {hold.payment_id}) : "
            "réessayez une fois cette tentative terminée.",
        )
    if invoice.status not in PAYABLE_STATUSES:
        label = InvoiceStatus(invoice.status).label
        raise _Refused("conflict", f"La facture {invoice.number} n'est plus à régler ({label}).")
    if row.amount < invoice.amount_ttc:
        raise _Refused("amount", "Le montant encaissé ne couvre pas la facture.")


def _payer(session: Session, row: UnappliedPayment, company: Company) -> tuple[str, str]:
    """Who is told the invoice is paid: the payer of the attempt the money was meant for, or the company."""
    attempt = session.get(Payment, row.payment_id) if row.payment_id else None
    email = (attempt.payer_email if attempt is not None else None) or company.email or ""
    return company.name, email


def _held(session: Session, row: UnappliedPayment, payment: Payment) -> UnappliedHold:
    invoice, emitter = session.exec(
        select(Invoice, Emitter)
        .join(Emitter, col(Emitter.id) == Invoice.emitter_id)
        .join(PaymentInvoice, col(PaymentInvoice.invoice_id) == Invoice.id)
        .where(PaymentInvoice.payment_id == payment.id)
    ).one()
    company = session.get(Company, payment.company_id)
    assert company is not None and invoice.id is not None
    name, email = _payer(session, row, company)
    return UnappliedHold(
        ok=True,
        payment_id=payment.id,
        channel=payment.channel,
        transaction_id=row.transaction_number,
        paid_at=(row.paid_at or row.received_at).isoformat(),
        amount=f"{payment.amount:.2f}",
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        settles_directly=emitter.settles_directly,
        payer_name=name,
        payer_email=email,
    )


@activity.defn
def hold_for_unapplied(inp: UnappliedHoldInput) -> UnappliedHold:
    """Claims the money and holds the invoice in one transaction, or changes nothing at all."""
    try:
        with session_scope() as session:
            row = unapplied.claim(session, inp.unapplied_id)
            assert row.id is not None
            payment_id = unapplied.application_payment_id(row.id)
            payment = session.get(Payment, payment_id)
            if payment is None:
                invoice, _ = _invoice(session, inp.invoice_number)
                _check(session, row, invoice)
                company = session.get(Company, invoice.company_id)
                assert company is not None and invoice.id is not None
                payment = hold_invoices(
                    session,
                    ReserveInput(
                        payment_id=payment_id,
                        workflow_id=unapplied.application_workflow_id(row.id),
                        channel=unapplied.channel_of(row).value,
                        company_id=invoice.company_id,
                        user_id=inp.user_id,
                        user_name=inp.user_name,
                        invoice_ids=[invoice.id],
                        payer_email=_payer(session, row, company)[1],
                    ),
                )
            # else: this application was held before (a retry, or a run resumed): the same answer.
            return _held(session, row, payment)
    except unapplied.UnappliedRefused as refused:
        return UnappliedHold(ok=False, error_code="decided", error=str(refused))
    except (_Refused, Refusal) as refused:
        return UnappliedHold(ok=False, error_code=refused.code, error=refused.message)
    except IntegrityError:
        return UnappliedHold(ok=False, error_code="held", error=HELD_ELSEWHERE)


@activity.defn
def mark_unapplied_applied(inp: MarkAppliedInput) -> None:
    """After the settlement: the row is applied, with the finance user's name in the invoice's log."""
    with session_scope() as session:
        marked = unapplied.mark_applied(
            session, inp.unapplied_id, inp.invoice_id, inp.invoice_number, inp.user_name
        )
        row = session.get(UnappliedPayment, inp.unapplied_id)
        invoice = session.get(Invoice, inp.invoice_id)
        assert row is not None and invoice is not None
        if marked:
            append_message(
                session,
                inp.invoice_id,
                function="FIN",
                name="FIN_UNAPPLIED_APPLIED",
                state=invoice.status,
                observations=(
                    f"Encaissement {row.transaction_number} ({api_amount(row.amount)} MAD)"
                    f" affecté par {inp.user_name}"
                ),
                user_name=inp.user_name,
                receiver="PortNet",
                payment_id=inp.payment_id,
                dedupe_key=f"{inp.payment_id}:unapplied:{inp.invoice_id}",
            )


ACTIVITIES: list[Callable[..., Any]] = [hold_for_unapplied, mark_unapplied_applied]
