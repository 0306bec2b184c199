"""The finance back-office's operations, shared by its pages and its JSON API.

Decisions on a live attempt go to its workflow (signals); the web layer writes only what no
workflow owns: an invoice's block / unblock / cancel. Unapplied money is web/unapplied.py's (applying
it is a workflow too). Every decision leaves a line in the invoices' message log with the finance
user's name.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlmodel import Session, col, select
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from portnet.i18n import N_
from portnet.messagelog import append_message
from portnet.models import (
    Company,
    Emitter,
    Invoice,
    InvoiceHold,
    Payment,
    PaymentChannelData,
    User,
    utcnow,
)
from portnet.money import api_amount
from portnet.settings import Settings
from portnet.statuses import Channel, InvoiceStatus, PaymentStatus
from web.attempts import UNAVAILABLE, PaymentRefused, forget_view
from web.payments import request_cancel
from workflows.channels.cheque_transfer import OFFLINE_CHANNELS
from workflows.payment import PaymentWorkflow
from workflows.types import FinanceDecision

log = logging.getLogger("portnet.web.finance")


@dataclass
class FinanceError(Exception):
    status_code: int
    message: str


def temporal_link(settings: Settings, workflow_id: str) -> str:
    """The workflow in the Temporal Web UI, built from settings so a remote UI works too."""
    base = settings.temporal_ui_url.rstrip("/")
    namespace = quote(settings.temporal_namespace, safe="")
    return f"{base}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"


@dataclass
class PaymentFilters:
    channel: str | None = None
    status: str | None = None
    company: str | None = None  # customs code or part of the name
    invoice: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1
    page_size: int = 50


def list_payments(
    db: Session, f: PaymentFilters
) -> tuple[list[tuple[Payment, Company, PaymentChannelData | None]], int]:
    query = (
        select(Payment, Company, PaymentChannelData)
        .join(Company, col(Company.id) == Payment.company_id)
        .join(PaymentChannelData, col(PaymentChannelData.payment_id) == Payment.id, isouter=True)
    )
    if f.channel:
        query = query.where(Payment.channel == f.channel)
    if f.status:
        query = query.where(Payment.status == f.status)
    if f.company:
        like = f"%{f.company.lower()}%"
        query = query.where(
            sa.or_(col(Company.customs_code) == f.company, sa.func.lower(Company.name).like(like))
        )
    if f.invoice:
        query = query.where(col(Payment.invoice_numbers).contains(f.invoice))
    if f.date_from:
        query = query.where(col(Payment.created_at) >= datetime.combine(f.date_from, time()))
    if f.date_to:
        query = query.where(col(Payment.created_at) < datetime.combine(f.date_to + timedelta(days=1), time()))
    total = db.exec(select(sa.func.count()).select_from(query.subquery())).one()
    rows = db.exec(
        query.order_by(col(Payment.created_at).desc(), col(Payment.id))
        .offset((max(f.page, 1) - 1) * f.page_size)
        .limit(f.page_size)
    ).all()
    return list(rows), int(total)


def payment_json(
    settings: Settings, payment: Payment, company: Company, data: PaymentChannelData | None
) -> dict[str, Any]:
    return {
        "id": payment.id,
        "workflow_id": payment.workflow_id,
        "channel": payment.channel,
        "channel_label": Channel(payment.channel).label,
        "status": payment.status,
        "amount": api_amount(payment.amount),
        "company": {"name": company.name, "customs_code": company.customs_code},
        "invoice_numbers": [n for n in payment.invoice_numbers.split(",") if n],
        "created_at": payment.created_at.isoformat(),
        "paid_at": payment.paid_at.isoformat() if payment.paid_at else None,
        "partner_reference": data.partner_reference if data else None,
        "expires_at": data.expires_at.isoformat() if data and data.expires_at else None,
        "declaration": json.loads(data.declaration) if data and data.declaration else None,
        "decided_by": data.decided_by if data else None,
        "decision_reason": data.decision_reason if data else None,
        "failure_reason": payment.failure_reason,
        "temporal_url": temporal_link(settings, payment.workflow_id),
        # Not over in the ledger: finance may try to cancel it (the workflow has the last word).
        "in_progress": not PaymentStatus(payment.status).is_final,
    }


def awaiting_confirmation(db: Session) -> list[tuple[Payment, Company, PaymentChannelData | None]]:
    rows, _ = list_payments(
        db, PaymentFilters(status=PaymentStatus.AWAITING_CONFIRMATION.value, page_size=500)
    )
    return [r for r in rows if r[0].channel in OFFLINE_CHANNELS and (r[2] is None or r[2].decided_by is None)]


async def decide(
    client: Client, db: Session, user: User, payment_id: str, confirm: bool, reason: str
) -> Payment:
    """Confirm (the money is in the bank) or reject a declared cheque or transfer: an Update, whose
    refusal (already decided, or the attempt closing at its deadline) is a 409 with the workflow's reason."""
    payment = db.get(Payment, payment_id)
    if payment is None:
        raise FinanceError(404, N_("Paiement introuvable."))
    if payment.channel not in OFFLINE_CHANNELS:
        raise FinanceError(
            409, N_("Seuls les chèques et virements attendent une confirmation de la finance.")
        )
    if payment.status != PaymentStatus.AWAITING_CONFIRMATION.value:
        raise FinanceError(
            409, f"Ce règlement n'attend plus de confirmation ({PaymentStatus(payment.status).label})."
        )
    if not confirm and len(reason.strip()) < 3:
        raise FinanceError(422, N_("Indiquez le motif du rejet."))
    handle = client.get_workflow_handle(payment.workflow_id)
    no_longer = FinanceError(409, N_("Ce règlement n'attend plus de confirmation."))
    try:
        view = await handle.query(PaymentWorkflow.state)
        if view is None or view.status != PaymentStatus.AWAITING_CONFIRMATION.value:
            raise no_longer
        verdict = await handle.execute_update(
            PaymentWorkflow.finance_decide, FinanceDecision(confirm, user.username, reason.strip()[:500])
        )
        forget_view(payment.id)  # the payer's status page sees finance's verdict at once
    except WorkflowUpdateFailedError:
        raise no_longer from None
    except RPCError as err:
        # NOT_FOUND: the workflow closed (deadline passed meanwhile): there is nothing left to decide.
        if err.status == RPCStatusCode.NOT_FOUND:
            raise no_longer from None
        raise FinanceError(503, UNAVAILABLE) from None
    except WorkflowQueryFailedError:
        raise FinanceError(503, UNAVAILABLE) from None
    if not verdict.accepted:
        raise FinanceError(409, verdict.reason or no_longer.message)
    return payment


async def cancel_attempt(
    client: Client, payment: Payment, reason: str, not_live_message: str | None = None
) -> str | None:
    """Cancels a live attempt and waits for the workflow's verdict: its final status, or None if it
    has not decided within the wait. 409 at once when it is over or its money already accepted."""
    try:
        await request_cancel(client, payment, reason)
    except PaymentRefused as refused:
        message = not_live_message if not_live_message and refused.status_code == 409 else refused.message
        raise FinanceError(refused.status_code, message) from None
    return await _final_status(client.get_workflow_handle(payment.workflow_id))


async def cancel_payment(client: Client, db: Session, user: User, payment_id: str, reason: str) -> str | None:
    """Finance cancels one attempt (with a reason): its invoices are given back, the reason and the
    finance user's name go into their message log. Returns ``cancelled``, or None if still pending."""
    if len(reason.strip()) < 3:
        raise FinanceError(422, N_("Indiquez le motif de l'annulation."))
    payment = db.get(Payment, payment_id)
    if payment is None:
        raise FinanceError(404, N_("Paiement introuvable."))
    motive = f"Annulé par la finance ({user.username}) : {reason.strip()[:300]}"
    db.close()  # no connection held while the workflow decides (up to the verdict's wait)
    outcome = await cancel_attempt(client, payment, motive)
    log.info("finance user %s cancelled attempt %s (%r): %s", user.username, payment.id, reason, outcome)
    if outcome == PaymentStatus.SUCCEEDED.value:
        raise FinanceError(
            409, N_("Le paiement a été accepté entre-temps : la tentative n'a pas été annulée.")
        )
    if outcome is not None and outcome != PaymentStatus.CANCELLED.value:
        label = PaymentStatus(outcome).label
        raise FinanceError(409, f"La tentative s'est terminée entre-temps ({label}) : rien n'a été annulé.")
    return outcome


# --- invoices: block / unblock / cancel -----------------------------------------------------

INVOICE_ACTIONS = {
    "block": (N_("Bloquée par la finance"), InvoiceStatus.BLOCKED),
    "unblock": (N_("Débloquée par la finance"), InvoiceStatus.UNPAID),
    "cancel": (N_("Annulée par la finance"), InvoiceStatus.CANCELLED),
}


async def invoice_action(
    client: Client | None, db: Session, user: User, invoice_id: int, action: str, reason: str
) -> Invoice:
    if action not in INVOICE_ACTIONS:
        raise FinanceError(422, N_("Action inconnue."))
    if len(reason.strip()) < 3:
        raise FinanceError(422, N_("Indiquez le motif."))
    invoice = db.get(Invoice, invoice_id)
    if invoice is None:
        raise FinanceError(404, N_("Facture introuvable."))
    label, target = INVOICE_ACTIONS[action]
    allowed = {
        "block": {InvoiceStatus.UNPAID.value, InvoiceStatus.REQUESTED.value, InvoiceStatus.IN_PAYMENT.value},
        "unblock": {InvoiceStatus.BLOCKED.value},
        "cancel": {
            InvoiceStatus.UNPAID.value,
            InvoiceStatus.REQUESTED.value,
            InvoiceStatus.IN_PAYMENT.value,
            InvoiceStatus.BLOCKED.value,
        },
    }[action]
    if invoice.status not in allowed:
        raise FinanceError(409, f"Impossible pour une facture « {InvoiceStatus(invoice.status).label} ».")
    hold = db.get(InvoiceHold, invoice_id)
    if hold is not None:
        # A live attempt holds it: it must let go first. Once money was accepted it is too late.
        payment = db.get(Payment, hold.payment_id)
        assert payment is not None
        if client is None:
            raise FinanceError(503, N_("Service de paiement momentanément indisponible."))
        # Only the workflow knows whether money was accepted meanwhile: wait for its verdict.
        outcome = await cancel_attempt(
            client,
            payment,
            f"{label} ({user.username}) : {reason.strip()[:200]}",
            not_live_message=N_(
                "Un paiement de cette facture est en cours de règlement : réessayez plus tard."
            ),
        )
        if outcome != PaymentStatus.CANCELLED.value:
            raise FinanceError(
                409,
                N_("Le paiement en cours n'a pas pu être annulé")
                + (" (paiement accepté entre-temps)." if outcome == PaymentStatus.SUCCEEDED.value else ".")
                + " Rechargez la page.",
            )
        db.expire_all()  # the hold and the invoice as the release left them
        db.refresh(invoice)
        if db.get(InvoiceHold, invoice_id) is not None or invoice.status not in allowed:
            raise FinanceError(409, N_("La facture a changé entre-temps : rechargez la page."))
    assert invoice.id is not None
    invoice.status = target.value
    if target == InvoiceStatus.CANCELLED:
        invoice.cancelled_at = utcnow()
    db.add(invoice)
    append_message(
        db,
        invoice.id,
        function="FIN",
        name=f"FIN_INVOICE_{action.upper()}",
        state=invoice.status,
        observations=f"{label} : {reason.strip()[:300]}",
        user_name=user.username,
        receiver="PortNet",
    )
    db.commit()
    return invoice


async def _final_status(handle: Any, wait_seconds: float = 15.0) -> str | None:
    """The attempt's status once it is over (or None if it does not end within ``wait_seconds``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while loop.time() < deadline:
        try:
            view = await handle.query(PaymentWorkflow.state)
        except RPCError:
            view = None
        if view is not None and PaymentStatus(view.status).is_final:
            return str(view.status)
        if (
            view is not None
            and view.status == PaymentStatus.AWAITING_CONFIRMATION.value
            and view.channel not in (OFFLINE_CHANNELS)
        ):
            return PaymentStatus.SUCCEEDED.value  # the money was accepted: it will settle
        await asyncio.sleep(0.1)
    return None


def finance_invoices(
    db: Session, number: str | None, status: str | None, limit: int = 50
) -> list[tuple[Invoice, Emitter, Company]]:
    query = (
        select(Invoice, Emitter, Company)
        .join(Emitter, col(Emitter.id) == Invoice.emitter_id)
        .join(Company, col(Company.id) == Invoice.company_id)
    )
    if number:
        query = query.where(Invoice.number == number.strip())
    if status:
        query = query.where(Invoice.status == status)
    return list(db.exec(query.order_by(col(Invoice.invoice_date).desc()).limit(limit)).all())


def as_decimal(value: Decimal) -> str:
    return api_amount(value)
