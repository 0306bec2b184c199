"""PaymentWorkflow: one execution per payment attempt, whatever the channel.

hold the invoices -> the channel gives the payer the next action -> the channel collects (partner,
payer or finance, until its deadline) -> settle, or release -> confirmation e-mail -> settlement
notices to the emitters, and their acknowledgements (workflows/settlement.py).

The workflow owns an ``Attempt`` (workflows/attempt.py: the view, the approval, the ledger steps) and
the attempt's channel (workflows/channels/: one class per channel). Partner and payer messages are
Updates and Signals declared here, by the names the web layer and recorded histories use, and handed
to the channel in one line: only the workflow decides, atomically, whether a callback still counts.
Deterministic: time is workflow time, I/O is in activities.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    # The sandbox resolves the type hints of activity results (Reservation, Settlement...) in the
    # modules this one imports itself: the ledger's payloads must be among them.
    from activities.types import Reservation, Settlement  # noqa: F401
    from portnet.statuses import PaymentStatus
    from workflows.attempt import Attempt
    from workflows.channels import channel_for
    from workflows.channels.base import Failed, Released
    from workflows.settlement import AfterSettlement
    from workflows.types import (
        AmanpayDecision,
        AmanpayNotice,
        CmiDecision,
        CmiResult,
        EmitterAck,
        FatouratiDecision,
        FatouratiResult,
        FinanceDecision,
        PaymentInput,
        PaymentView,
        SealedCode,
        SmsCodeOutcome,
        SmsResendOutcome,
    )


@workflow.defn
class PaymentWorkflow:
    @workflow.init
    def __init__(self, inp: PaymentInput) -> None:
        self._attempt = Attempt(inp)
        self._channel = channel_for(self._attempt)
        self._after = AfterSettlement()

    # --- reads ---------------------------------------------------------------------------------

    @workflow.query
    def state(self) -> PaymentView | None:
        return self._attempt.view

    @workflow.update
    async def ready(self) -> PaymentView:
        """Returns once the payer has something to do (or the attempt failed): the API's 201/409."""
        await workflow.wait_condition(lambda: self._attempt.ready)
        return self._attempt.shown

    # --- partner and payer messages: the channel decides ------------------------------------------

    @workflow.update
    def cmi_result(self, result: CmiResult) -> CmiDecision:
        """CMI's verified card callback: capture, or acknowledge without capture."""
        return self._channel.cmi_result(result)

    @workflow.update
    def fatourati_result(self, result: FatouratiResult) -> FatouratiDecision:
        """CMI Fatourati's verified payment callback."""
        return self._channel.fatourati_result(result)

    @workflow.signal
    def finance_decision(self, decision: FinanceDecision) -> None:
        """Finance confirms or rejects a declared cheque or transfer."""
        self._channel.finance_decision(decision)

    @workflow.update
    def amanpay_result(self, notice: AmanpayNotice) -> AmanpayDecision:
        """Amanpay's verified notification (cash code paid, Amanty paid/refused/cancelled)."""
        return self._channel.amanpay_result(notice)

    @workflow.update
    async def sms_code(self, code: SealedCode) -> SmsCodeOutcome:
        """The PayDirect SMS code, sealed by the web layer; the bank compares it."""
        return await self._channel.sms_code(code)

    @sms_code.validator
    def _validate_sms_code(self, code: SealedCode) -> None:
        self._channel.validate_sms_code(code)

    @workflow.update
    async def sms_resend(self) -> SmsResendOutcome:
        return await self._channel.sms_resend()

    @sms_resend.validator
    def _validate_sms_resend(self) -> None:
        self._channel.validate_sms_resend()

    @workflow.signal
    def cancel(self, reason: str) -> None:
        self._attempt.cancel(reason or "Annulé par le payeur")

    @workflow.signal
    def emitter_acknowledged(self, ack: EmitterAck) -> None:
        self._after.acknowledged(ack)

    # --- the attempt ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: PaymentInput) -> PaymentView:
        view = self._attempt.begin()
        try:
            await self._pay()
        except asyncio.CancelledError:
            # Cancelled from the Temporal UI or API: give the invoices back before we go.
            if self._attempt.holding:
                await asyncio.shield(
                    self._attempt.release(PaymentStatus.CANCELLED, "Tentative annulée par l'opérateur")
                )
            raise
        return view

    async def _pay(self) -> None:
        attempt, channel = self._attempt, self._channel
        reservation = await attempt.reserve()
        if not reservation.ok:
            return
        started = await channel.start(reservation)
        if isinstance(started, Failed):
            await attempt.fail(started.error_code, started.message)
            return
        attempt.awaiting(started.status, started.action, started.deadline)
        outcome = await channel.collect()
        if isinstance(outcome, Released):
            await attempt.release(outcome.status, outcome.reason)
            await channel.after_release(outcome)
            return
        settlement = await attempt.settle(outcome.approval)
        inp, view = attempt.inp, attempt.shown
        await self._after.confirm_by_mail(inp.payment_id, inp.payer.email)
        if settlement.awaiting_emitters:
            await self._after.notify_emitters(
                inp.payment_id,
                settlement.awaiting_emitters,
                view.transaction_id or "",
                inp.emitter_ack_deadline_seconds,
                still_awaiting=lambda pending: setattr(view, "awaiting_emitters", pending),
            )
