"""Finance's unapplied money (*Encaissements non affectés*): the list, applying it, marking it for refund.

The web layer writes no payment state. Applying starts ``ApplyUnappliedWorkflow`` with
update-with-start on its ``outcome`` Update and reports what it answers: applied (on the money's own
channel), or refused with the reason, nothing changed. The workflow holds the invoice like any
payment attempt, so it never races one. A double submit joins the application already running
(same workflow id). The refund decision goes to the ledger's one writer of unapplied money.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from portnet import unapplied
from portnet.models import UnappliedPayment, User
from portnet.money import api_amount
from portnet.settings import Settings
from portnet.statuses import Channel
from web.attempts import UNAVAILABLE
from web.finance import FinanceError
from workflows import details
from workflows.unapplied import REFUSED, ApplyOutcome, ApplyUnappliedInput, ApplyUnappliedWorkflow

log = logging.getLogger("portnet.web.unapplied")

# The HTTP status of each refusal the application can answer.
REFUSAL_STATUS = {"not_found": 404, "ambiguous": 404, "amount": 422}


def list_unapplied(db: Session, status: str | None = None) -> list[UnappliedPayment]:
    query = select(UnappliedPayment)
    if status:
        query = query.where(UnappliedPayment.status == status)
    return list(db.exec(query.order_by(col(UnappliedPayment.received_at).desc())).all())


def unapplied_json(row: UnappliedPayment) -> dict[str, Any]:
    return {
        "id": row.id,
        "partner": row.partner,
        "channel": row.channel,
        "channel_label": Channel(row.channel).label,
        "transaction_number": row.transaction_number,
        "partner_reference": row.partner_reference,
        "payment_id": row.payment_id,
        "amount": api_amount(row.amount),
        "reason": row.reason,
        "status": row.status,
        "invoice_id": row.invoice_id,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "note": row.note,
        "paid_at": row.paid_at.isoformat() if row.paid_at else None,
        "received_at": row.received_at.isoformat(),
    }


def _undecided(db: Session, unapplied_id: int) -> UnappliedPayment:
    row = db.get(UnappliedPayment, unapplied_id)
    if row is None:
        raise FinanceError(404, "Encaissement introuvable.")
    # ``applying``: an application the worker has not finished; applying again resumes it.
    if row.status not in (unapplied.OPEN, unapplied.APPLYING):
        raise FinanceError(409, "Cet encaissement a déjà été traité.")
    return row


async def apply_unapplied(
    client: Client, settings: Settings, db: Session, user: User, unapplied_id: int, invoice_number: str
) -> ApplyOutcome:
    """Late or duplicate money settles an invoice still unpaid and held by nothing: the workflow's
    answer, or ``FinanceError`` with the reason it refused (nothing changed then)."""
    number = invoice_number.strip()
    if not number:
        raise FinanceError(422, "Indiquez le numéro de la facture.")
    row = await run_in_threadpool(_undecided, db, unapplied_id)
    channel, amount = row.channel, row.amount
    reference, transaction = row.partner_reference, row.transaction_number
    user_id, user_name = user.id, user.username
    db.close()  # no connection held while the workflow applies
    operation = WithStartWorkflowOperation(
        ApplyUnappliedWorkflow.run,
        ApplyUnappliedInput(
            unapplied_id=unapplied_id,
            invoice_number=number,
            user_id=user_id,
            user_name=user_name,
            emitter_ack_deadline_seconds=settings.emitter_ack_deadline_seconds,
        ),
        id=unapplied.application_workflow_id(unapplied_id),
        task_queue=settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=details.unapplied_summary(unapplied_id, channel, amount, number),
        static_details=details.unapplied_details(
            unapplied_id, channel, amount, reference, transaction, number, user_name
        ),
    )
    try:
        outcome = await client.execute_update_with_start_workflow(
            ApplyUnappliedWorkflow.outcome, start_workflow_operation=operation
        )
    except (RPCError, WorkflowUpdateFailedError) as err:
        log.warning("applying unapplied money %s: Temporal error %s", unapplied_id, err)
        raise FinanceError(503, UNAVAILABLE) from None
    if outcome.status == REFUSED:
        raise FinanceError(
            REFUSAL_STATUS.get(outcome.error_code or "", 409), outcome.reason or "Affectation refusée."
        )
    if outcome.invoice_number != number:
        raise FinanceError(
            409, f"Cet encaissement a été affecté entre-temps à la facture {outcome.invoice_number}."
        )
    log.info(
        "finance user %s applied unapplied money %s to %s (%s)",
        user_name,
        unapplied_id,
        outcome.invoice_number,
        outcome.payment_id,
    )
    return outcome


def refund_unapplied(db: Session, user: User, unapplied_id: int, note: str) -> UnappliedPayment:
    _undecided(db, unapplied_id)
    try:
        return unapplied.mark_for_refund(unapplied_id, user.username, note)
    except unapplied.UnappliedRefused as refused:
        raise FinanceError(409, str(refused)) from None
