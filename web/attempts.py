"""Finding a payment attempt and reading its state, for every route that shows or acts on one.

Apart from web/payments.py (which starts and cancels attempts) so that each channel's routes
(web/channels/) can read an attempt without importing the code that dispatches to them.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from portnet.db import get_engine
from portnet.i18n import N_
from portnet.models import Document, Emitter, Invoice, InvoiceMessage, Payment, PaymentInvoice, User
from portnet.money import api_amount, to_money
from portnet.statuses import InvoiceStatus, PaymentStatus, Role
from web import status_watch
from web.deps import company_scope
from workflows.payment import PaymentWorkflow
from workflows.types import PaymentView

# What a portal URL may carry as a payment id before we look it up (the ledger has the last word).
PAYMENT_ID_IN_URL = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
UNAVAILABLE = N_("Service de paiement momentanément indisponible, réessayez.")
PAYER_ONLY = N_(
    "Réservé au client qui a lancé ce paiement. La finance annule une tentative depuis ses propres "
    "écrans, avec un motif (POST /api/v1/finance/payments/{id}/cancel)."
)


@dataclass
class PaymentRefused(Exception):
    status_code: int
    message: str
    code: str = "refused"


def new_payment_id() -> str:
    """Our order id, also CMI's ``oid``: short, unique, safe in URLs and in every partner's field."""
    return "PN" + secrets.token_hex(6).upper()


def workflow_id_of(payment_id: str) -> str:
    return f"payment-{payment_id}"


def payment_for_user(db: Session, user: User, payment_id: str) -> Payment | None:
    payment = db.get(Payment, payment_id)
    if payment is None:
        return None
    scope = company_scope(user)
    if scope is not None and payment.company_id != scope:
        return None
    return payment


async def find_payment(db: Session, user: User, payment_id: str) -> Payment | None:
    """``payment_for_user`` from an async route: read in a worker thread, the connection given back."""

    def read() -> Payment | None:
        try:
            return payment_for_user(db, user, payment_id)
        finally:
            db.close()

    return await run_in_threadpool(read)


# What pollers of a live attempt (the API's GET; the status page reloads only every 3 s) are answered
# from: the workflow's last answer to this process, for up to POLL_SECONDS. A query is a workflow task
# on a worker, queued behind the payments' own: payers polling every 100 ms would cost more than their
# payments. A final status is never held back by it (the ledger is read first, on every request).
POLL_SECONDS = 0.5
_POLLED_MAX = 4096
_polled: OrderedDict[str, tuple[float, PaymentView]] = OrderedDict()


async def read_view(
    client: Client | None, payment: Payment, db: Session | None = None, *, polling: bool = False
) -> PaymentView:
    """What an attempt shows: the ledger's once it is over, the workflow's while it lives.

    Once the ledger holds a final status (written by the settlement or the release, before the
    workflow moves on), it knows everything the attempt shows: no query, which would cost a workflow
    task, or a replay of the whole history once the workflow is closed. A live attempt is asked (its
    next action, declines, deadline); the ledger row stands in only when Temporal cannot answer.
    ``polling``: a reader that asks again and again may get the answer another request got less
    than ``POLL_SECONDS`` ago (never after an action of this request: those read afresh).
    ``payment`` is the row as read by the caller; ledger reads run in a worker thread.
    """
    if PaymentStatus(payment.status).is_final:
        _polled.pop(payment.id, None)
        return await run_in_threadpool(ledger_view, payment, db, False)
    now = time.monotonic()
    recent = _polled.get(payment.id) if polling else None
    if recent is not None and now - recent[0] < POLL_SECONDS:
        return replace(recent[1])
    if client is not None:
        try:
            view = await client.get_workflow_handle(payment.workflow_id).query(PaymentWorkflow.state)
            if view is not None:
                view = with_reserved_amount(view, payment)
                _remember(payment.id, now, view)
                return view
        except (RPCError, WorkflowQueryFailedError):
            pass
    return await run_in_threadpool(ledger_view, payment, db, True)


def with_reserved_amount(view: PaymentView, payment: Payment) -> PaymentView:
    """The attempt's amount as the ledger holds it while the workflow shows none yet.

    An attempt shows 0.00 until its workflow has read its reservation back; the reservation wrote the
    ledger row the caller read (an idempotent retry of a start joins such an attempt). A payer shown
    0.00 would pay 0.00: a cash counter refuses it, and the attempt waits for a payer who tried."""
    if view.status == PaymentStatus.STARTED.value and payment.amount and not to_money(view.amount):
        return replace(view, amount=api_amount(payment.amount))
    return view


def forget_view(payment_id: str) -> None:
    """After this process changed the attempt (an Update, a Signal): its pollers ask afresh, and
    its long-polling waiters (web/status_watch.py) at once."""
    _polled.pop(payment_id, None)
    status_watch.wake(payment_id)


def _remember(payment_id: str, at: float, view: PaymentView) -> None:
    _polled[payment_id] = (at, replace(view))
    _polled.move_to_end(payment_id)
    while len(_polled) > _POLLED_MAX:
        _polled.popitem(last=False)


def ledger_view(payment: Payment, db: Session | None, fallback: bool) -> PaymentView:
    """The attempt as the ledger knows it (``fallback``: shown because the workflow did not answer)."""
    if db is None:
        with Session(get_engine(), expire_on_commit=False) as session:
            return ledger_view(payment, session, fallback)
    invoice_ids = [
        link.invoice_id
        for link in db.exec(select(PaymentInvoice).where(PaymentInvoice.payment_id == payment.id)).all()
    ]
    view = PaymentView(
        id=payment.id,
        workflow_id=payment.workflow_id,
        status=payment.status,
        channel=payment.channel,
        amount=api_amount(payment.amount),
        invoice_ids=invoice_ids,
        invoice_numbers=payment.invoice_numbers.split(","),
        error=payment.failure_reason,
        transaction_id=payment.partner_transaction_id,
        from_ledger=fallback,
    )
    if invoice_ids and not fallback:
        # The declines are logged on each invoice of the attempt: the first invoice has them all.
        declines = db.exec(
            select(InvoiceMessage)
            .where(
                InvoiceMessage.invoice_id == min(invoice_ids),
                InvoiceMessage.payment_id == payment.id,
                col(InvoiceMessage.name).like("%_PAY_DECLINED"),
            )
            .order_by(col(InvoiceMessage.seq))
        ).all()
        view.declines = len(declines)
        view.last_decline = declines[-1].observations if declines else None
    if payment.status == PaymentStatus.SUCCEEDED.value:
        view.receipt_document_id = db.exec(
            select(Document.id).where(Document.payment_id == payment.id, Document.kind == "receipt")
        ).first()
        waiting = db.exec(
            select(Emitter.code)
            .join(Invoice, col(Invoice.emitter_id) == Emitter.id)
            .where(
                col(Invoice.id).in_(invoice_ids),
                col(Emitter.settles_directly).is_(False),
                col(Invoice.status).in_(
                    (InvoiceStatus.PAYMENT_CONFIRMED.value, InvoiceStatus.AWAITING_PARTNER.value)
                ),
            )
        ).all()
        view.awaiting_emitters = sorted(set(waiting))
    return view


def payer_payment(db: Session, user: User, payment_id: str) -> Payment:
    """The attempt, for an action only its payer may take (cancel, SMS code): 404, or 403 for others.

    Finance and admin see every attempt but act on one only through the finance endpoints, which
    ask for a reason and leave their name in the invoices' message log.
    """
    payment = payment_for_user(db, user, payment_id)
    if payment is None:
        raise PaymentRefused(404, N_("Paiement introuvable."), "not_found")
    if user.role != Role.CLIENT.value or payment.company_id != user.company_id:
        raise PaymentRefused(403, PAYER_ONLY, "forbidden")
    return payment
