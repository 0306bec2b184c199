"""Starting and reading payment attempts, shared by the JSON API and the portal.

The web layer writes no payment state: it checks what it can cheaply (ownership, status, allowed
channel) to give a clear answer, then starts the workflow and waits on its ``ready`` Update in the
same round trip (update-with-start). The workflow's reservation stays the arbiter of races.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, select
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowQueryFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from portnet.models import Company, Payment, PaymentInvoice, User
from portnet.money import api_amount, total
from portnet.queries import invoices_for_user
from portnet.settings import Settings
from portnet.statuses import ENABLED_CHANNELS, PAYABLE_STATUSES, Channel, InvoiceStatus, PaymentStatus, Role
from web.amanpay import ChannelRefused, payer_for, settings_for
from web.channel_inputs import DeclarationError, deadline_seconds, declaration_for
from web.deps import company_scope
from workflows.attempt import search_attributes
from workflows.channels.cheque_transfer import OFFLINE_CHANNELS
from workflows.payment import PaymentWorkflow
from workflows.types import PayerInfo, PaymentInput, PaymentView

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_INVOICES = 50
UNAVAILABLE = "Service de paiement momentanément indisponible, réessayez."
PAYER_ONLY = (
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


def _payer(user: User, company: Company, payer: dict[str, str] | None) -> PayerInfo:
    payer = payer or {}
    email = (payer.get("email") or user.email or company.email or "").strip()
    if not EMAIL.match(email):
        raise PaymentRefused(422, "Adresse e-mail du payeur invalide.", "invalid_payer")
    name = (payer.get("name") or user.full_name or company.name).strip()[:120]
    phone = (payer.get("phone") or "").strip() or None
    if phone and not re.fullmatch(r"\+?[0-9 .-]{8,20}", phone):
        raise PaymentRefused(422, "Numéro de téléphone invalide.", "invalid_payer")
    return PayerInfo(name=name, email=email, phone=phone)


async def start_payment(
    client: Client,
    db: Session,
    settings: Settings,
    user: User,
    invoice_ids: list[int],
    channel: str,
    payer: dict[str, str] | None,
    declaration: dict[str, str] | None = None,
    payment_id: str | None = None,
) -> PaymentView:
    if user.role != Role.CLIENT.value or user.company_id is None:
        raise PaymentRefused(403, "Seul un client peut régler ses factures.", "forbidden")
    try:
        chan = Channel(channel)
    except ValueError:
        raise PaymentRefused(422, f"Canal de paiement inconnu: {channel}.", "invalid_channel") from None
    if chan not in ENABLED_CHANNELS:
        raise PaymentRefused(
            422, f"Le canal {chan.label} n'est pas encore disponible.", "channel_unavailable"
        )
    ids = list(dict.fromkeys(invoice_ids))
    if not ids:
        raise PaymentRefused(422, "Sélectionnez au moins une facture.", "no_invoice")
    if len(ids) > MAX_INVOICES:
        raise PaymentRefused(422, f"Au plus {MAX_INVOICES} factures par règlement.", "too_many_invoices")
    rows = invoices_for_user(db, ids, company_scope(user))
    if len(rows) != len(ids):
        raise PaymentRefused(404, "Facture introuvable.", "not_found")
    not_payable = [inv for inv, _, _ in rows if inv.status not in PAYABLE_STATUSES]
    if not_payable:
        listed = ", ".join(f"{inv.number} ({InvoiceStatus(inv.status).label})" for inv in not_payable)
        raise PaymentRefused(409, f"Facture(s) non réglable(s): {listed}.", "conflict")
    refused = [inv.number for inv, _, _ in rows if chan.method.value not in inv.methods]
    if refused:
        raise PaymentRefused(
            422,
            f"{chan.label} n'est pas autorisé pour la/les facture(s) {', '.join(refused)}.",
            "method_not_allowed",
        )
    company = rows[0][2]
    try:
        declared = declaration_for(chan, declaration, date.today())
    except DeclarationError as bad:
        raise PaymentRefused(422, str(bad), "invalid_declaration") from None
    try:
        amanpay_payer, name, phone = payer_for(chan, payer or {})
    except ChannelRefused as bad:
        raise PaymentRefused(bad.status_code, bad.message, bad.code) from None
    payer_info = _payer(
        user, company, {**(payer or {}), "name": name or "", "phone": phone or ""} if name else payer
    )
    if payment_id is None or not re.fullmatch(r"PN[0-9A-F]{12}", payment_id):
        payment_id = new_payment_id()
    elif db.get(Payment, payment_id) is not None:
        # The order number shown on the Amanpay screen was already used (a second submit).
        raise PaymentRefused(409, "Cette commande a déjà été lancée.", "conflict")
    amount = total(inv.amount_ttc for inv, _, _ in rows)
    inp = PaymentInput(
        payment_id=payment_id,
        channel=chan.value,
        company_id=user.company_id,
        user_id=user.id,
        user_name=user.username,
        invoice_ids=ids,
        payer=payer_info,
        payment_deadline_seconds=deadline_seconds(chan, settings),
        emitter_ack_deadline_seconds=settings.emitter_ack_deadline_seconds,
        reminder_before_seconds=settings.fatourati_reminder_before_seconds,
        declaration=declared,
        finance_alert_email=settings.finance_alert_email,
        amanpay=amanpay_payer,
        amanpay_settings=settings_for(settings) if amanpay_payer is not None else None,
    )
    operation = WithStartWorkflowOperation(
        PaymentWorkflow.run,
        inp,
        id=workflow_id_of(payment_id),
        task_queue=settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=search_attributes(
            inp,
            company.customs_code,
            [em.code for _, em, _ in rows],
            [inv.number for inv, _, _ in rows],
            api_amount(amount),
        ),
    )
    # Give the connection back before waiting on Temporal: a request must not hold the pool meanwhile.
    db.close()
    view = await client.execute_update_with_start_workflow(
        PaymentWorkflow.ready, start_workflow_operation=operation
    )
    if view.status == PaymentStatus.FAILED.value and view.error_code:
        status = {"conflict": 409, "not_found": 404}.get(view.error_code, 422)
        raise PaymentRefused(status, view.error or "Paiement refusé.", view.error_code)
    return view


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
        raise PaymentRefused(404, "Paiement introuvable.", "not_found")
    if user.role != Role.CLIENT.value or payment.company_id != user.company_id:
        raise PaymentRefused(403, PAYER_ONLY, "forbidden")
    return payment


def is_cancellable(view: PaymentView) -> bool:
    """Whether the workflow still honours a cancel: before money was accepted.

    A declared cheque or transfer waits for finance in ``awaiting_confirmation`` and may still be
    withdrawn; for the other channels that status means the partner's approval was accepted.
    """
    if view.status in (PaymentStatus.STARTED.value, PaymentStatus.AWAITING_PAYER.value):
        return True
    return view.status == PaymentStatus.AWAITING_CONFIRMATION.value and view.channel in OFFLINE_CHANNELS


def attempt_over_message(status: str) -> str:
    if status in (PaymentStatus.AWAITING_CONFIRMATION.value, PaymentStatus.SUCCEEDED.value):
        return "Le paiement a été accepté : la tentative ne peut plus être annulée."
    if status in {s.value for s in PaymentStatus if s.is_final}:
        label = PaymentStatus(status).label
        return f"Cette tentative de paiement est terminée ({label}) : elle ne peut plus être annulée."
    return "Cette tentative de paiement est terminée : elle ne peut plus être annulée."


async def request_cancel(client: Client, payment: Payment, reason: str) -> PaymentView | None:
    """Signals ``cancel`` to a live attempt; returns the state it had, or raises ``PaymentRefused``.

    409 when the attempt is over (or its money accepted): a signal to a closed workflow is an
    RPCError NOT_FOUND, which must not surface as a 500. 503 when Temporal does not answer.
    """
    handle = client.get_workflow_handle(payment.workflow_id)
    try:
        view = await handle.query(PaymentWorkflow.state)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise PaymentRefused(409, attempt_over_message(payment.status), "attempt_over") from None
        raise PaymentRefused(503, UNAVAILABLE, "unavailable") from None
    except WorkflowQueryFailedError:
        raise PaymentRefused(503, UNAVAILABLE, "unavailable") from None
    if view is not None and not is_cancellable(view):
        raise PaymentRefused(409, attempt_over_message(view.status), "attempt_over")
    try:
        await handle.signal(PaymentWorkflow.cancel, reason)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # it ended between the query and the signal
            raise PaymentRefused(409, attempt_over_message(payment.status), "attempt_over") from None
        raise PaymentRefused(503, UNAVAILABLE, "unavailable") from None
    return view
