"""Reconciliation's activities (Hyperswitch's PSync, Kill Bill's Janitor): find the outcomes the
ledger lost, ask the partners, and settle each one.

What is looked for (``find_reconciliation_candidates``):

- partner calls stuck in ``processing`` (the process died mid-way) or ``temporal_unavailable`` (the
  workflow never heard of them) and never taken over by a redelivery: activities/stuck_callbacks.py;
- attempts still holding invoices past their deadline, and attempts closed (expired, cancelled)
  lately on a channel whose partner we can ask (Fatourati's token look-up, Amanpay's order status).

For an attempt (``reconcile_attempt``): if the partner says paid, the payment goes to the live
workflow as the channel's own notice (the workflow alone decides whether it still counts), or, when
the attempt is over, becomes unapplied money with the reason, never dropped. Invoices still held by
an attempt whose workflow is closed are released through the ledger's release path, unless a
partner's approval was accepted for it (then finance decides: no release after an approval).
Every activity is idempotent: findings are keyed, unapplied money is keyed by the partner's
transaction, the release is the ledger's own idempotent one. Database work runs in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities import amanpay as amanpay_adapter
from activities import cmi_card as cmi_card_adapter
from activities import fatourati as fatourati_adapter
from activities.ledger import release_invoices
from activities.stuck_callbacks import STUCK_VERDICTS, reconcile_callback
from activities.types import ReleaseInput
from portnet import reconciliation as findings
from portnet import unapplied
from portnet.db import session_scope
from portnet.models import (
    InvoiceHold,
    PartnerCallback,
    Payment,
    PaymentChannelData,
    ReconciliationFinding,
    utcnow,
)
from portnet.protocols import cmi_api
from portnet.settings import Settings, get_settings
from portnet.statuses import Channel, PaymentStatus

# Channels whose partner we can ask about an order: CMI's ORDERHISTORY for cards, Fatourati's token
# look-up, Amanpay's order status.
ASKABLE = (
    Channel.CMI_CARD.value,
    Channel.CMI_FATOURATI.value,
    Channel.AMANPAY_CODE.value,
    Channel.AMANPAY_AMANTY.value,
)
# Live attempts asked about while they still wait (PSync): the partner's "paid" is delivered to the
# workflow as the partner's own notice; for a card, CMI's approval as its callback would carry it (a
# dropped callback leaves an authorisation the attempt then captures through CMI's API).
ASKED_WHILE_LIVE = (
    Channel.CMI_CARD.value,
    Channel.CMI_FATOURATI.value,
    Channel.AMANPAY_CODE.value,
    Channel.AMANPAY_AMANTY.value,
)
BATCH = 200


@dataclass
class Candidates:
    callbacks: list[int] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)


@dataclass
class AttemptCheck:
    run_id: str
    payment_id: str


@dataclass
class RunTotals:
    run_id: str
    candidates: int
    errors: int


@dataclass
class PartnerPayment:
    """A payment the partner reports for one of our orders (checked and verified)."""

    partner: str
    transaction: str  # the partner's own transaction number
    amount: Decimal
    notice: dict[str, Any] | None  # the channel's notice, as the workflow's Update takes it
    update: str  # that Update's name
    # A card authorisation CMI holds without capture: no money taken, finance voids or leaves it.
    authorised_only: bool = False


def deadline_of(payment: Payment, data: PaymentChannelData | None, s: Settings) -> datetime:
    """When the attempt stops taking money: the reference's expiry, else its channel's timeout."""
    if data is not None and data.expires_at is not None:
        return data.expires_at
    seconds = {
        Channel.CMI_CARD.value: s.cmi_payment_deadline_seconds,
        Channel.CMI_FATOURATI.value: s.fatourati_expiry_seconds,
        Channel.AMANPAY_CODE.value: s.amanpay_code_ttl_seconds,
        Channel.AMANPAY_AMANTY.value: s.amanpay_redirect_deadline_seconds,
        Channel.AMANPAY_PAYDIRECT.value: s.paydirect_step_timeout_seconds,
    }.get(payment.channel, s.offline_payment_deadline_seconds)
    return payment.created_at + timedelta(seconds=seconds)


@activity.defn
def find_reconciliation_candidates(run_id: str) -> Candidates:
    """Stuck partner calls; attempts overdue with invoices held; attempts closed lately, unchecked."""
    s = get_settings()
    findings.start_run(run_id)
    now = utcnow()
    stale = now - timedelta(seconds=s.reconciliation_stale_seconds)
    grace = timedelta(seconds=s.reconciliation_grace_seconds)
    with session_scope() as session:
        callbacks = session.exec(
            select(PartnerCallback.id)
            .where(
                col(PartnerCallback.verdict).in_(STUCK_VERDICTS),
                col(PartnerCallback.dedupe_key).is_not(None),
                col(PartnerCallback.received_at) < stale,
            )
            .order_by(col(PartnerCallback.id))
            .limit(BATCH)
        ).all()
        attempts: list[str] = []
        held = session.exec(
            select(Payment, PaymentChannelData)
            .join(PaymentChannelData, col(PaymentChannelData.payment_id) == Payment.id, isouter=True)
            .where(col(Payment.id).in_(select(InvoiceHold.payment_id).distinct()))
            .order_by(col(Payment.created_at))
        ).all()
        waiting_since = dict(
            session.exec(
                select(InvoiceHold.payment_id, sa.func.min(InvoiceHold.created_at)).group_by(
                    col(InvoiceHold.payment_id)
                )
            ).all()
        )
        live_after = now - timedelta(seconds=s.reconciliation_live_after_seconds)
        for payment, data in held:
            overdue = deadline_of(payment, data, s) + grace < now
            # PSync: a notice the partner never delivered must not leave paid invoices waiting.
            asked_while_live = payment.channel in ASKED_WHILE_LIVE and waiting_since[payment.id] < live_after
            if overdue or asked_while_live:
                attempts.append(payment.id)
        checked = select(ReconciliationFinding.payment_id).where(
            ReconciliationFinding.kind == "expired_attempt",
            col(ReconciliationFinding.payment_id).is_not(None),
        )
        closed = session.exec(
            select(Payment.id)
            .where(
                col(Payment.channel).in_(ASKABLE),
                col(Payment.status).in_((PaymentStatus.EXPIRED.value, PaymentStatus.CANCELLED.value)),
                col(Payment.updated_at) >= now - timedelta(seconds=s.reconciliation_lookback_seconds),
                col(Payment.updated_at) < now - grace,
                col(Payment.id).not_in(checked),
            )
            .order_by(col(Payment.updated_at))
            .limit(BATCH)
        ).all()
        attempts += [pid for pid in closed if pid not in attempts]
    return Candidates(callbacks=[c for c in callbacks if c is not None], attempts=attempts[:BATCH])


@activity.defn
def finish_reconciliation_run(totals: RunTotals) -> int:
    return findings.finish_run(totals.run_id, totals.candidates, totals.errors)


async def workflow_is_live(workflow_id: str) -> bool:
    """Whether the attempt's workflow still runs (a workflow Temporal no longer knows is closed)."""
    try:
        described = await activity.client().get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return described.status == WorkflowExecutionStatus.RUNNING


async def ask_partner(payment: Payment, reference: str | None) -> PartnerPayment | None:
    """The partner's payment for this order, if it reports one (answers checked, then verified)."""
    if payment.channel == Channel.CMI_FATOURATI.value:
        if not reference:
            return None
        token = await fatourati_adapter.look_up_token(payment.id, reference)
        if not token.paid:
            return None
        notice = {
            "callback_id": 0,
            "transaction_number": token.transaction_number,
            "decision_code": "0",
            "amount": f"{token.amount:.2f}",
            "channel": token.channel or "reconciliation",
            "transaction_date": token.transaction_date or None,
        }
        return PartnerPayment("fatourati", token.transaction_number, token.amount, notice, "fatourati_result")
    if payment.channel == Channel.CMI_CARD.value:
        history = await cmi_card_adapter.order_history(payment.id)
        held = [t for t in history.transactions or () if t.state in (cmi_api.CAPTURED, cmi_api.AUTHORISED)]
        if not held:
            return None
        # Captured money first: that is money taken; an authorisation alone is not.
        found = sorted(held, key=lambda t: t.state != cmi_api.CAPTURED)[0]
        amount = found.amount if found.amount is not None else payment.amount
        notice = {  # CMI's approval as its callback carries it (the workflow then confirms the capture)
            "callback_id": 0,
            "approved": True,
            "proc_return_code": found.proc_return_code or cmi_api.APPROVED_CODE,
            "trans_id": found.trans_id,
            "amount": f"{amount:.2f}",
            "auth_code": found.auth_code or None,
            "transaction_date": found.trx_date or None,
        }
        authorised_only = found.state == cmi_api.AUTHORISED
        return PartnerPayment(
            "cmi", f"cmi:{found.trans_id}", amount, notice, "cmi_result", authorised_only=authorised_only
        )
    if payment.channel in (Channel.AMANPAY_CODE.value, Channel.AMANPAY_AMANTY.value):
        order = await amanpay_adapter.look_up_order(payment.id)
        if order is None or not order.paid:
            return None
        notice = {
            "callback_id": 0,
            "event_id": f"{payment.id}-paid",
            "status": "paid",
            "amount": f"{order.amount:.2f}",
            "transaction_id": order.transaction_id,
            "channel": "reconciliation",
            "reason": "",
        }
        # Keyed as the notification route keys it: one row whichever of the two sees the money first.
        return PartnerPayment(
            "amanpay", f"amanpay:{order.transaction_id}", order.amount, notice, "amanpay_result"
        )
    return None


async def deliver_notice(workflow_id: str, paid: PartnerPayment) -> bool:
    """The partner's "paid" to the live workflow as the channel's notice; True if it settles with it."""
    if paid.notice is None:
        return False
    handle = activity.client().get_workflow_handle(workflow_id)
    try:
        decision = await handle.execute_update(paid.update, paid.notice)
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return False  # closed meanwhile: the money is unapplied
        raise
    except Exception as err:  # WorkflowUpdateFailedError: the workflow refused it
        activity.logger.warning("reconciliation: %s refused the notice: %s", workflow_id, err)
        return False
    if paid.update == "fatourati_result":
        return isinstance(decision, dict) and decision.get("outcome") in ("accepted", "duplicate")
    if paid.update == "cmi_result":  # captured by the attempt: its approval (or a replay of it)
        return isinstance(decision, dict) and str(decision.get("answer", "")).startswith("ACTION=POSTAUTH")
    return isinstance(decision, dict) and bool(decision.get("accepted"))


def _load(payment_id: str) -> tuple[Payment, PaymentChannelData | None, int, bool]:
    with session_scope() as session:
        payment = session.get(Payment, payment_id)
        assert payment is not None, payment_id
        data = session.get(PaymentChannelData, payment_id)
        holds = len(
            session.exec(select(InvoiceHold.invoice_id).where(InvoiceHold.payment_id == payment_id)).all()
        )
        accepted = session.exec(
            select(PartnerCallback.id).where(
                PartnerCallback.payment_id == payment_id, PartnerCallback.verdict == "accepted"
            )
        ).first()
        session.expunge_all()
        return payment, data, holds, accepted is not None


@activity.defn
async def reconcile_attempt(check: AttemptCheck) -> list[str]:
    """One attempt: its partner's word on the money, then the invoices it may still hold."""
    s, run_id = get_settings(), check.run_id
    payment, data, holds, approval_accepted = await asyncio.to_thread(_load, check.payment_id)
    live = await workflow_is_live(payment.workflow_id)
    now = utcnow()
    overdue = deadline_of(payment, data, s) + timedelta(seconds=s.reconciliation_grace_seconds) < now
    outcomes: list[str] = []

    async def note(kind: str, outcome: str, detail: str, **extra: Any) -> None:
        made = findings.Finding(
            dedupe_key=extra.pop("key", f"{kind}:{payment.id}"),
            run_id=run_id,
            kind=kind,
            outcome=outcome,
            payment_id=payment.id,
            partner=extra.pop("partner", None),
            amount=extra.pop("amount", payment.amount),
            detail=detail,
            **extra,
        )
        if await asyncio.to_thread(findings.record, made):
            outcomes.append(f"{kind}:{outcome}")

    async def act_on(paid: PartnerPayment | None, reference: str | None) -> None:
        """The partner's word: delivered to the live attempt, or money kept unapplied, or noted."""
        if paid is None:
            if not live:
                await note("expired_attempt", "unpaid_at_partner", "Le partenaire ne connaît aucun paiement.")
        elif paid.authorised_only and not live:
            await note(
                "expired_attempt",
                "left_for_finance",
                "CMI détient une autorisation non capturée : aucun argent pris (à annuler chez CMI)",
                partner=paid.partner,
                amount=paid.amount,
                partner_transaction=paid.transaction,
            )
        elif live and await deliver_notice(payment.workflow_id, paid):
            await note(
                "expired_attempt",
                "delivered",
                "Paiement constaté chez le partenaire, transmis à la tentative",
                partner=paid.partner,
                amount=paid.amount,
                partner_transaction=paid.transaction,
            )
        elif paid.authorised_only:
            pass  # refused by the live attempt (closing): no money taken; asked again next run
        elif await asyncio.to_thread(unapplied.settled_by, payment.id, paid.transaction):
            pass  # the payment that settled this attempt (read again: it may have settled meanwhile)
        else:
            reason = (
                f"{unapplied.amount_differs(payment.amount, paid.amount)} (constaté par la réconciliation)"
                if paid.amount != payment.amount
                else "Paiement constaté par la réconciliation chez le partenaire après la clôture de la "
                f"tentative ({payment.status})"
            )
            kept = await asyncio.to_thread(
                lambda: findings.keep_unapplied(
                    partner=paid.partner,
                    transaction_number=paid.transaction,
                    amount=paid.amount,
                    reason=reason,
                    payment_id=payment.id,
                    partner_reference=reference,
                    channel=payment.channel,
                )
            )
            await note(
                "expired_attempt",
                "unapplied",
                reason,
                partner=paid.partner,
                amount=paid.amount,
                partner_transaction=paid.transaction,
                unapplied_id=kept,
            )

    checked_key = f"expired_attempt:{payment.id}"
    # A partner that does not answer must not keep invoices held by a closed attempt: the release
    # goes on, the failure is raised at the end (Temporal retries; the next run asks again).
    unanswered: Exception | None = None
    # A live attempt is asked too once it has waited a while (PSync: the partner's notice may never
    # come, a card's callback may never reach us).
    asked_while_live = live and payment.channel in ASKED_WHILE_LIVE
    if (
        payment.channel in ASKABLE
        and (overdue or not live or asked_while_live)
        and not await asyncio.to_thread(findings.has_finding, checked_key)
    ):
        reference = data.partner_reference if data is not None else None
        try:
            paid = await ask_partner(payment, reference)
        except Exception as err:  # noqa: BLE001 - re-raised below, once the holds are seen to
            unanswered = err
        else:
            await act_on(paid, reference)
    if holds and not live:
        if approval_accepted:
            await note(
                "orphan_hold",
                "left_for_finance",
                "Une approbation du partenaire a été acceptée : pas de libération",
            )
        else:
            final = payment.status if PaymentStatus(payment.status).is_final else PaymentStatus.EXPIRED.value
            reason = "Factures libérées par la réconciliation (tentative close)"
            await asyncio.to_thread(
                release_invoices,
                ReleaseInput(payment.id, payment.channel, "reconciliation", final, reason, []),
            )
            await note("orphan_hold", "released", reason)
    elif holds and live and overdue:
        await note("overdue_attempt", "left_to_workflow", "Tentative en cours au-delà de son échéance")
    if unanswered is not None:
        raise unanswered
    return outcomes


ACTIVITIES: list[Callable[..., Any]] = [
    find_reconciliation_candidates,
    reconcile_callback,
    reconcile_attempt,
    finish_reconciliation_run,
]
