"""Finding a payment attempt and reading its state, for every route that shows or acts on one.

Apart from web/payments.py (which starts and cancels attempts) so that each channel's routes
(web/channels/) can read an attempt without importing the code that dispatches to them.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlmodel import Session, select
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from portnet.i18n import N_
from portnet.models import Payment, PaymentInvoice, User
from portnet.money import api_amount
from portnet.statuses import Role
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


async def read_view(client: Client | None, payment: Payment, db: Session | None = None) -> PaymentView:
    """The workflow's own state; the ledger row only if Temporal cannot answer right now."""
    if client is not None:
        try:
            view = await client.get_workflow_handle(payment.workflow_id).query(PaymentWorkflow.state)
            if view is not None:
                return view
        except (RPCError, WorkflowQueryFailedError):
            pass
    invoice_ids: list[int] = []
    if db is not None:
        links = db.exec(select(PaymentInvoice).where(PaymentInvoice.payment_id == payment.id)).all()
        invoice_ids = [link.invoice_id for link in links]
    return PaymentView(
        id=payment.id,
        workflow_id=payment.workflow_id,
        status=payment.status,
        channel=payment.channel,
        amount=api_amount(payment.amount),
        invoice_ids=invoice_ids,
        invoice_numbers=payment.invoice_numbers.split(","),
        error=payment.failure_reason,
        transaction_id=payment.partner_transaction_id,
        from_ledger=True,
    )


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
