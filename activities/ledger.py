"""Ledger activities: hold, release and settle invoices, with payment rows and the message log.

Each activity is one database transaction and is idempotent, because Temporal may run it again
after a crash between the commit and the report of its completion. They are synchronous (SQLAlchemy
is) and run on the worker's thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from temporalio import activity

from activities.late_settlement import keep_unapplied_settlement
from activities.receipts import receipt_number, render_receipt, store_receipt
from activities.types import (
    MarkPaidInput,
    ReleaseInput,
    Reservation,
    ReservedInvoice,
    ReserveInput,
    SettleInput,
    Settlement,
)
from portnet.db import session_scope
from portnet.messagelog import append_message
from portnet.models import (
    Company,
    Document,
    Emitter,
    Invoice,
    InvoiceHold,
    Payment,
    PaymentInvoice,
    utcnow,
)
from portnet.money import total
from portnet.queries import payment_invoices
from portnet.statuses import (
    PAYABLE_STATUSES,
    Channel,
    InvoiceStatus,
    PaymentStatus,
)

RECEIVER = {"CMI": "CMI", "AMA": "Amanpay", "FIN": "PortNet"}


def _naive(iso: str) -> datetime:
    return datetime.fromisoformat(iso).replace(tzinfo=None)


def _reservation_of(session: Session, payment: Payment) -> Reservation:
    rows = payment_invoices(session, payment.id)
    company = session.get(Company, payment.company_id)
    assert company is not None
    return Reservation(
        ok=True,
        amount=f"{payment.amount:.2f}",
        invoices=[
            ReservedInvoice(
                id=inv.id or 0,
                number=inv.number,
                emitter_code=em.code,
                emitter_name=em.name,
                amount_ttc=f"{pi.amount_ttc:.2f}",
                settles_directly=em.settles_directly,
            )
            for inv, em, pi in rows
        ],
        client_name=company.name,
        client_code=company.customs_code,
    )


def _refuse(inp: ReserveInput, code: str, message: str) -> Reservation:
    """Keeps a trace of the refused attempt (finance sees it) without holding anything."""
    with session_scope() as session:
        if session.get(Payment, inp.payment_id) is None:
            session.add(
                Payment(
                    id=inp.payment_id,
                    workflow_id=inp.workflow_id,
                    channel=inp.channel,
                    amount=Decimal("0.00"),
                    status=PaymentStatus.FAILED.value,
                    company_id=inp.company_id,
                    user_id=inp.user_id,
                    payer_email=inp.payer_email,
                    failure_reason=message,
                )
            )
    return Reservation(ok=False, error_code=code, error=message)


@activity.defn
def reserve_invoices(inp: ReserveInput) -> Reservation:
    """Holds every invoice of the attempt, or none: the InvoiceHold primary key is the arbiter."""
    try:
        with session_scope() as session:
            existing = session.get(Payment, inp.payment_id)
            if existing is not None:
                if existing.status == PaymentStatus.FAILED.value:
                    return Reservation(ok=False, error_code="conflict", error=existing.failure_reason)
                return _reservation_of(session, existing)
            return _reservation_of(session, hold_invoices(session, inp))
    except Refusal as refusal:
        return _refuse(inp, refusal.code, refusal.message)
    except IntegrityError:
        return _refuse(inp, "conflict", HELD_ELSEWHERE)


HELD_ELSEWHERE = "Une des factures est déjà en cours de paiement."


def hold_invoices(session: Session, inp: ReserveInput) -> Payment:
    """In the caller's transaction: the attempt's payment row, a hold on each invoice, the log lines.

    Raises ``Refusal`` when an invoice is missing, another company's or not payable; the hold's
    primary key raises ``IntegrityError`` (at the flush) when a live attempt already holds one.
    Every payment that takes invoices goes through here: attempts and applied unapplied money.
    """
    function = Channel(inp.channel).message_function
    query = (
        select(Invoice, Emitter)
        .join(Emitter, col(Emitter.id) == Invoice.emitter_id)
        .where(col(Invoice.id).in_(inp.invoice_ids))
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Invoice)  # type: ignore[arg-type]
    rows = session.exec(query.order_by(col(Invoice.number))).all()
    found = {inv.id for inv, _ in rows}
    missing = [i for i in inp.invoice_ids if i not in found]
    if missing or any(inv.company_id != inp.company_id for inv, _ in rows):
        raise Refusal("not_found", "Facture introuvable.")
    blocked = [inv.number for inv, _ in rows if inv.status not in PAYABLE_STATUSES]
    if blocked:
        labels = ", ".join(
            f"{inv.number} ({InvoiceStatus(inv.status).label})" for inv, _ in rows if inv.number in blocked
        )
        raise Refusal("conflict", f"Facture(s) non réglable(s): {labels}.")
    amount = total(inv.amount_ttc for inv, _ in rows)
    payment = Payment(
        id=inp.payment_id,
        workflow_id=inp.workflow_id,
        channel=inp.channel,
        amount=amount,
        status=PaymentStatus.STARTED.value,
        company_id=inp.company_id,
        user_id=inp.user_id,
        payer_email=inp.payer_email,
        emitter_codes=",".join(sorted({em.code for _, em in rows})),
        invoice_numbers=",".join(inv.number for inv, _ in rows),
    )
    session.add(payment)
    session.flush()
    numbers = ", ".join(inv.number for inv, _ in rows)
    for inv, _ in rows:
        assert inv.id is not None
        session.add(InvoiceHold(invoice_id=inv.id, payment_id=payment.id, previous_status=inv.status))
        session.add(PaymentInvoice(payment_id=payment.id, invoice_id=inv.id, amount_ttc=inv.amount_ttc))
    session.flush()  # the hold's primary key refuses an invoice held by another live attempt
    for inv, _ in rows:
        assert inv.id is not None
        before = inv.status
        inv.status = InvoiceStatus.IN_PAYMENT.value
        session.add(inv)
        # The guide's line keeps the invoice's state as the payer found it ("Non Réglée"); the
        # invoice itself carries our richer "En cours de paiement". The name stays our code for the
        # line (API, tests); the portal shows the names of EDI messages only.
        append_message(
            session,
            inv.id,
            function=function,
            name=f"{function}_PAY_REQ",
            state=before,
            observations=f"Reglement des factures: {numbers}",
            user_name=inp.user_name,
            receiver=RECEIVER.get(function),
            payment_id=payment.id,
            dedupe_key=f"{payment.id}:reserve:{inv.id}",
        )
    return payment


class Refusal(Exception):
    """Why invoices cannot be held: a stable code and a French sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _log_declines(
    session: Session, payment: Payment, invoice_ids: list[int], inp: SettleInput | ReleaseInput, function: str
) -> None:
    for decline in inp.declines:
        for invoice_id in invoice_ids:
            hold = session.get(InvoiceHold, invoice_id)
            append_message(
                session,
                invoice_id,
                function=function,
                name=f"{function}_PAY_DECLINED",
                # Like the guide's payment lines: the state the payer found the invoice in.
                state=hold.previous_status if hold is not None else InvoiceStatus.UNPAID.value,
                observations=f"Paiement refusé (code {decline.proc_return_code}): {decline.err_msg or '-'}",
                user_name=inp.user_name,
                receiver=RECEIVER.get(function),
                payment_id=payment.id,
                dedupe_key=f"{payment.id}:decline:{decline.trans_id}:{invoice_id}",
                at=_naive(decline.at),
            )


@activity.defn
def settle_payment(inp: SettleInput) -> Settlement:
    """The money is confirmed: invoices confirmed (PORTNET's paid), payment data, receipt."""
    function = Channel(inp.channel).message_function
    paid_at = _naive(inp.paid_at)
    with session_scope() as session:
        payment = session.get(Payment, inp.payment_id)
        assert payment is not None, inp.payment_id
        # The invoices with their emitters, in one query (their links are updated by statement).
        rows = [(inv, em) for inv, em, _ in payment_invoices(session, payment.id)]
        invoice_ids = [inv.id or 0 for inv, _ in rows]
        awaiting: dict[str, list[str]] = {}
        if payment.status != PaymentStatus.SUCCEEDED.value and not _holds_its_invoices(session, payment):
            # Released meanwhile (an abandoned settle, a late retry): the invoices may already be in
            # another attempt, so nothing is marked paid; the money is kept for finance.
            unapplied_id = keep_unapplied_settlement(payment, inp)
            return Settlement(receipt_document_id=0, receipt_number=f"ENC-{unapplied_id:08d}", applied=False)
        # Its id only: a retry does not read the stored PDF back.
        receipt_id = session.exec(
            select(Document.id).where(Document.payment_id == payment.id, Document.kind == "receipt")
        ).first()
        # The PDF is laid out before this transaction writes anything: on SQLite a transaction that
        # has written holds the database's only write lock until it commits, and fpdf2 takes tens of
        # milliseconds of CPU. The receipt is then stored with the settlement, in one commit, unless
        # ``issue_receipt`` issues it after the settlement (``receipt_after``): the payer sees
        # "succeeded" without waiting for the layout.
        pdf = (
            None
            if receipt_id is not None or inp.receipt_after
            else render_receipt(session, payment, rows, inp, payment.paid_at or paid_at)
        )
        if payment.status != PaymentStatus.SUCCEEDED.value:
            _log_declines(session, payment, invoice_ids, inp, function)
            payment.status = PaymentStatus.SUCCEEDED.value
            payment.partner_transaction_id = inp.transaction_id
            payment.paid_at = paid_at
            payment.updated_at = utcnow()
            session.add(payment)
            session.execute(
                sa.update(PaymentInvoice)
                .where(col(PaymentInvoice.payment_id) == payment.id)
                .values(in_force=True)
            )
            for inv, em in rows:
                assert inv.id is not None
                inv.status = InvoiceStatus.PAYMENT_CONFIRMED.value
                append_message(
                    session,
                    inv.id,
                    function=function,
                    name=f"{function}_PAY_OK",
                    state=inv.status,
                    observations=f"Paiement confirmé, transaction {inp.transaction_id}",
                    user_name=inp.user_name,
                    receiver=RECEIVER.get(function),
                    payment_id=payment.id,
                    dedupe_key=f"{payment.id}:settle:{inv.id}",
                    at=paid_at,
                )
                if em.settles_directly:
                    inv.status = InvoiceStatus.PAID.value
                    append_message(
                        session,
                        inv.id,
                        function="INV",
                        name="INV_PAID",
                        state=inv.status,
                        observations="Facture payée",
                        receiver=em.name,
                        payment_id=payment.id,
                        dedupe_key=f"{payment.id}:paid:{inv.id}",
                        at=paid_at,
                    )
                session.add(inv)
            session.execute(sa.delete(InvoiceHold).where(col(InvoiceHold.payment_id) == payment.id))
        for inv, em in rows:
            if not em.settles_directly and inv.status in (
                InvoiceStatus.PAYMENT_CONFIRMED.value,
                InvoiceStatus.AWAITING_PARTNER.value,
            ):
                awaiting.setdefault(em.code, []).append(inv.number)

        if receipt_id is None and pdf is not None:
            receipt_id = store_receipt(session, payment, pdf).id
        return Settlement(
            # 0 when the receipt is issued after the settlement and not yet stored.
            receipt_document_id=receipt_id or 0,
            receipt_number=receipt_number(payment.id),
            awaiting_emitters=awaiting,
        )


def _holds_its_invoices(session: Session, payment: Payment) -> bool:
    held = session.exec(select(InvoiceHold.invoice_id).where(InvoiceHold.payment_id == payment.id).limit(1))
    return held.first() is not None


@activity.defn
def release_invoices(inp: ReleaseInput) -> None:
    """No money: the invoices go back to what they were, the attempt keeps its final status."""
    function = Channel(inp.channel).message_function
    with session_scope() as session:
        payment = session.get(Payment, inp.payment_id)
        assert payment is not None, inp.payment_id
        holds = session.exec(select(InvoiceHold).where(InvoiceHold.payment_id == payment.id)).all()
        invoice_ids = [h.invoice_id for h in holds]
        _log_declines(session, payment, invoice_ids, inp, function)
        for hold in holds:
            invoice = session.get(Invoice, hold.invoice_id)
            assert invoice is not None
            if invoice.status == InvoiceStatus.IN_PAYMENT.value:
                invoice.status = hold.previous_status
                session.add(invoice)
            append_message(
                session,
                hold.invoice_id,
                function=function,
                name=f"{function}_PAY_{inp.final_status.upper()}",
                state=invoice.status,
                observations=f"Tentative {payment.id}: {inp.reason}",
                user_name=inp.user_name,
                receiver=RECEIVER.get(function),
                payment_id=payment.id,
                dedupe_key=f"{payment.id}:release:{hold.invoice_id}",
            )
            session.delete(hold)
        if not PaymentStatus(payment.status).is_final:
            payment.status = inp.final_status
            payment.failure_reason = inp.reason
            payment.updated_at = utcnow()
            session.add(payment)


def mark_awaiting_partner(payment_id: str, emitter_code: str, notice_id: str) -> None:
    """After the emitter took our settlement notice: its invoices wait for its acknowledgement."""
    with session_scope() as session:
        for inv, em in _payment_invoices_of_emitter(session, payment_id, emitter_code):
            assert inv.id is not None
            if inv.status == InvoiceStatus.PAYMENT_CONFIRMED.value:
                inv.status = InvoiceStatus.AWAITING_PARTNER.value
                session.add(inv)
            append_message(
                session,
                inv.id,
                function="INV",
                name="INV_SETTLEMENT_NOTICE",
                state=inv.status,
                observations=f"Avis de règlement {notice_id} transmis à {em.name}",
                receiver=em.name,
                needs_reply=True,
                payment_id=payment_id,
                dedupe_key=f"{payment_id}:notice:{inv.id}",
            )


@activity.defn
def mark_invoices_paid(inp: MarkPaidInput) -> None:
    """The emitter acknowledged the settlement: its invoices are paid."""
    with session_scope() as session:
        for inv, em in _payment_invoices_of_emitter(session, inp.payment_id, inp.emitter_code):
            assert inv.id is not None
            if inv.status in (InvoiceStatus.PAYMENT_CONFIRMED.value, InvoiceStatus.AWAITING_PARTNER.value):
                inv.status = InvoiceStatus.PAID.value
                session.add(inv)
            append_message(
                session,
                inv.id,
                function="INV",
                name="INV_PAID",
                state=inv.status,
                observations=f"Règlement acquitté par {em.name} ({inp.emitter_ack_id})",
                receiver="PortNet",
                payment_id=inp.payment_id,
                dedupe_key=f"{inp.payment_id}:ack:{inv.id}",
            )


def _payment_invoices_of_emitter(session: Session, payment_id: str, emitter_code: str) -> list:  # type: ignore[type-arg]
    return list(
        session.exec(
            select(Invoice, Emitter)
            .join(Emitter, col(Emitter.id) == Invoice.emitter_id)
            .join(PaymentInvoice, col(PaymentInvoice.invoice_id) == Invoice.id)
            .where(PaymentInvoice.payment_id == payment_id, Emitter.code == emitter_code)
        ).all()
    )


ACTIVITIES: list[Callable[..., Any]] = [
    reserve_invoices,
    settle_payment,
    release_invoices,
    mark_invoices_paid,
]
