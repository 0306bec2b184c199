"""The issue-4 channels of PaymentWorkflow: CMI Fatourati, cheque and bank transfer.

Kept apart from workflows/payment.py so the foundation's file only gains a dispatch, two handlers
and a few fields. These coroutines run inside the workflow (deterministic: workflow time, I/O in
activities) and use the workflow's own ``_release`` / ``_settle``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import fatourati, offline
    from portnet.statuses import Channel, PaymentStatus
    from workflows.types import (
        CmiResult,
        DecisionLogInput,
        Decline,
        FatouratiDecision,
        FatouratiResult,
        FinanceDecision,
        NextAction,
        PaymentInput,
        PaymentView,
        ReferenceEmailInput,
        RenewalInput,
        TokenInput,
    )

if TYPE_CHECKING:
    from workflows.payment import PaymentWorkflow

ISSUE4_CHANNELS = frozenset({Channel.CMI_FATOURATI.value, Channel.CHEQUE.value, Channel.BANK_TRANSFER.value})
OFFLINE_CHANNELS = frozenset({Channel.CHEQUE.value, Channel.BANK_TRANSFER.value})

LEDGER_TIMEOUT = timedelta(seconds=30)
PARTNER_TIMEOUT = timedelta(seconds=30)
# Token creation: the payer is waiting for the page; give up after a few minutes.
TOKEN_GIVE_UP = timedelta(minutes=3)
MAIL_GIVE_UP = timedelta(hours=6)
# The same policies as workflows/payment.py (kept here to avoid an import cycle).
LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["BusinessRefusal"],
)
PARTNER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["BusinessRefusal"],
)


def receipt_number(payment_id: str) -> str:
    """The same number the ledger prints on the receipt (activities.ledger._receipt_number)."""
    return f"REC-{payment_id}"


class ChannelState:
    """What the issue-4 channels keep in the workflow, next to the foundation's fields."""

    def __init__(self) -> None:
        self.paid: FatouratiResult | None = None
        self.closed = False  # the reference's deadline passed: any later payment is unapplied
        self.deadline: datetime | None = None
        self.finance: FinanceDecision | None = None
        self.background: list[asyncio.Task[None]] = []


def decide_fatourati(wf: PaymentWorkflow, result: FatouratiResult) -> FatouratiDecision:
    """The verified callback; only the workflow knows, without a race, whether it still counts."""
    st, view = wf._channels, wf._view
    if st.paid is not None:
        if result.transaction_number == st.paid.transaction_number:
            return FatouratiDecision("duplicate", "already settled", receipt_number(view.id if view else ""))
        if result.decision_code == "0":
            return FatouratiDecision("unapplied", "the reference was already paid")
    if result.decision_code != "0":
        wf._declines.append(
            Decline(
                result.transaction_number,
                result.decision_code,
                "Paiement refusé par la banque",
                workflow.now().isoformat(),
            )
        )
        if view is not None:
            view.declines = len(wf._declines)
            view.last_decline = f"Paiement refusé ({result.channel})"
        return FatouratiDecision("refused", "refusal recorded; the invoices stay held until the deadline")
    expired = st.deadline is not None and workflow.now() >= st.deadline
    if (
        view is None
        or st.closed
        or expired
        or wf._cancel_reason is not None
        or view.status != PaymentStatus.AWAITING_PAYER.value
    ):
        status = "expired" if expired or st.closed else (view.status if view else "starting")
        return FatouratiDecision("unapplied", f"attempt is {status}: money kept for finance")
    if result.amount != view.amount:
        return FatouratiDecision("amount_mismatch", "amount differs from the reference")
    st.paid = result
    wf._approved = CmiResult(
        callback_id=result.callback_id,
        approved=True,
        proc_return_code="00",
        trans_id=result.transaction_number,
        amount=result.amount,
        transaction_date=result.transaction_date,
    )
    wf._set_status(PaymentStatus.AWAITING_CONFIRMATION)
    return FatouratiDecision("accepted", "paid", receipt_number(view.id))


def accept_finance(wf: PaymentWorkflow, decision: FinanceDecision) -> None:
    view = wf._view
    if (
        wf._channels.finance is None
        and view is not None
        and view.channel in OFFLINE_CHANNELS
        and view.status == PaymentStatus.AWAITING_CONFIRMATION.value
    ):
        wf._channels.finance = decision


async def _mail(inp: PaymentInput, to: str, kind: str) -> None:
    try:
        await workflow.execute_activity(
            fatourati.send_channel_email,
            ReferenceEmailInput(inp.payment_id, to, kind),
            start_to_close_timeout=PARTNER_TIMEOUT,
            schedule_to_close_timeout=MAIL_GIVE_UP,
            retry_policy=_partner_retry(),
        )
    except ActivityError:
        workflow.logger.warning("%s e-mail for %s not sent", kind, inp.payment_id)


def _partner_retry() -> RetryPolicy:
    return PARTNER_RETRY


def _ledger_retry() -> RetryPolicy:
    return LEDGER_RETRY


async def run_channel(wf: PaymentWorkflow, inp: PaymentInput) -> PaymentView:
    if inp.channel == Channel.CMI_FATOURATI.value:
        return await _fatourati(wf, inp)
    return await _offline(wf, inp)


async def _fatourati(wf: PaymentWorkflow, inp: PaymentInput) -> PaymentView:
    view, st = wf._view, wf._channels
    assert view is not None
    expiry = timedelta(seconds=inp.payment_deadline_seconds)
    st.deadline = workflow.now() + expiry
    try:
        token = await workflow.execute_activity(
            fatourati.create_token,
            TokenInput(inp.payment_id, view.amount, st.deadline.isoformat(), inp.payer),
            start_to_close_timeout=PARTNER_TIMEOUT,
            schedule_to_close_timeout=TOKEN_GIVE_UP,
            retry_policy=_partner_retry(),
        )
    except ActivityError:
        view.error_code = "partner_unavailable"
        await wf._release(inp, PaymentStatus.FAILED, "Référence Fatourati indisponible, réessayez plus tard")
        wf._ready = True
        return view
    view.next_action = NextAction(
        type="fatourati_reference",
        fields={"reference": token.reference, "expires_at": st.deadline.isoformat(), "amount": view.amount},
    )
    view.deadline = st.deadline.isoformat()
    wf._set_status(PaymentStatus.AWAITING_PAYER)
    wf._ready = True
    st.background.append(asyncio.ensure_future(_mail(inp, inp.payer.email, "fatourati_reference")))

    def settled_or_cancelled() -> bool:
        return st.paid is not None or wf._cancel_reason is not None

    reminder_at = expiry - timedelta(seconds=inp.reminder_before_seconds)
    if reminder_at.total_seconds() > 0:
        try:
            await workflow.wait_condition(settled_or_cancelled, timeout=reminder_at)
        except TimeoutError:
            if not settled_or_cancelled():
                st.background.append(asyncio.ensure_future(_mail(inp, inp.payer.email, "fatourati_reminder")))
    if not settled_or_cancelled():
        remaining = st.deadline - workflow.now()
        if remaining.total_seconds() > 0:
            try:
                await workflow.wait_condition(settled_or_cancelled, timeout=remaining)
            except TimeoutError:
                pass
    st.closed = st.paid is None  # from here on, a payment is money for finance, never for these invoices
    if st.paid is not None:
        view.next_action = None
        await wf._settle(inp)
        return view
    try:
        await workflow.execute_activity(
            fatourati.cancel_token,
            inp.payment_id,
            start_to_close_timeout=PARTNER_TIMEOUT,
            schedule_to_close_timeout=MAIL_GIVE_UP,
            retry_policy=_partner_retry(),
        )
    except ActivityError:
        workflow.logger.warning("Fatourati token of %s not cancelled at CMI", inp.payment_id)
    if wf._cancel_reason is not None:
        await wf._release(inp, PaymentStatus.CANCELLED, wf._cancel_reason)
    else:
        await wf._release(
            inp, PaymentStatus.EXPIRED, "Référence Fatourati expirée (délai de paiement dépassé)"
        )
    return view


async def _offline(wf: PaymentWorkflow, inp: PaymentInput) -> PaymentView:
    view, st = wf._view, wf._channels
    assert view is not None
    await workflow.execute_activity(
        offline.record_declaration,
        args=[inp.payment_id, inp.user_name, dict(inp.declaration or {})],
        start_to_close_timeout=LEDGER_TIMEOUT,
        retry_policy=_ledger_retry(),
    )
    deadline = workflow.now() + timedelta(seconds=inp.payment_deadline_seconds)
    view.deadline = deadline.isoformat()
    view.next_action = NextAction(type="none")
    wf._set_status(PaymentStatus.AWAITING_CONFIRMATION)
    wf._ready = True
    try:
        await workflow.wait_condition(
            lambda: st.finance is not None or wf._cancel_reason is not None,
            timeout=timedelta(seconds=inp.payment_deadline_seconds),
        )
    except TimeoutError:
        if st.finance is None and wf._cancel_reason is None:
            await wf._release(
                inp, PaymentStatus.EXPIRED, "Encaissement non confirmé par la finance dans le délai"
            )
            await _mail_finance(inp)
            return view
    decision = st.finance
    if decision is None:
        await wf._release(inp, PaymentStatus.CANCELLED, wf._cancel_reason or "Annulé")
        return view
    now = workflow.now()
    await workflow.execute_activity(
        offline.log_finance_decision,
        DecisionLogInput(
            inp.payment_id, decision.user_name, decision.confirm, decision.reason, now.isoformat()
        ),
        start_to_close_timeout=LEDGER_TIMEOUT,
        retry_policy=_ledger_retry(),
    )
    if not decision.confirm:
        await wf._release(
            inp,
            PaymentStatus.FAILED,
            f"Rejeté par la finance ({decision.user_name}) : {decision.reason or '-'}",
        )
        return view
    declared = inp.declaration or {}
    reference = declared.get("cheque_number") or declared.get("transfer_reference") or inp.payment_id
    wf._approved = CmiResult(
        callback_id=0, approved=True, proc_return_code="00", trans_id=reference, amount=view.amount
    )
    # The money is in the bank: only now may a subscription invoice extend the subscription.
    await workflow.execute_activity(
        offline.renew_subscriptions,
        RenewalInput(inp.payment_id, now.isoformat()),
        start_to_close_timeout=LEDGER_TIMEOUT,
        retry_policy=_ledger_retry(),
    )
    await wf._settle(inp)
    return view


async def _mail_finance(inp: PaymentInput) -> None:
    await _mail(inp, inp.finance_alert_email, "offline_unconfirmed")
