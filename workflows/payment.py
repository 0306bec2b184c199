"""PaymentWorkflow: one execution per payment attempt, whatever the channel.

hold the invoices -> the channel gives the payer the next action -> the channel collects (partner,
payer or finance, until its deadline) -> settle, or release -> confirmation e-mail -> settlement
notices to the emitters, and their acknowledgements.

The workflow owns an ``Attempt`` (workflows/attempt.py: the view, the approval, the ledger steps) and
the attempt's channel (workflows/channels/: one class per channel). Partner and payer messages are
Updates and Signals declared here, by the names the web layer and recorded histories use, and handed
to the channel in one line: only the workflow decides, atomically, whether a callback still counts.
Deterministic: time is workflow time, I/O is in activities.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    # The sandbox resolves the type hints of activity results (Reservation, Settlement...) in the
    # modules this one imports itself: the ledger's payloads must be among them.
    from activities.types import Reservation, Settlement  # noqa: F401
    from portnet.statuses import PaymentStatus
    from workflows.attempt import CLOSING_RULE, Attempt, rules_begun_on
    from workflows.channels import channel_for
    from workflows.channels.base import Failed, Paid, Released
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
        FinanceVerdict,
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
        self._after = AfterSettlement(self._attempt.patched)
        # The confirmation e-mail and the notices have begun: an operator's cancel does not restart them.
        self._settled_steps_started = False

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
        """Finance's decision as the web layer sent it before ``finance_decide`` (attempts in flight)."""
        self._channel.finance_decision(decision)

    @workflow.update
    def finance_decide(self, decision: FinanceDecision) -> FinanceVerdict:
        """Finance confirms or rejects a declared cheque or transfer: answered accepted, or refused
        with the reason finance's page shows (already decided, or the attempt is closing)."""
        return self._channel.finance_decide(decision)

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
        # Asked first, where the closing rule was: an attempt begun before it finds no marker here.
        self._attempt.rules = rules_begun_on()
        if self._attempt.patched(CLOSING_RULE):
            self._attempt.closing_rule = True
            return await self._run_to_the_close(view)
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

    async def _run_to_the_close(self, view: PaymentView) -> PaymentView:
        """The attempt under the closing rule. An operator's cancel (while a timer or an activity runs)
        still gives the invoices back, unless an approval was accepted: then the attempt settles and
        ends ``succeeded``. The workflow returns once every handler has answered."""
        try:
            await self._pay()
        except BaseException as err:
            if not is_cancelled_exception(err):
                raise
            settled = await asyncio.shield(asyncio.ensure_future(self._close_after_cancel()))
            await self._all_answered()
            if not settled:
                raise
        await self._all_answered()
        return view

    async def _all_answered(self) -> None:
        """The attempt is over: ``ready`` answers with the view as it is (an operator's cancel may come
        before the payer had anything to do), and every handler finishes before the run returns."""
        self._attempt.ready = True
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _close_after_cancel(self) -> bool:
        """Cancelled by the operator: settle an accepted approval (True), or release (False)."""
        attempt = self._attempt
        if attempt.reserving is not None and not attempt.reserving.done():
            await workflow.wait([attempt.reserving])  # what it holds is known only once it has run
        if attempt.approval is None:
            await attempt.close()  # a bank call in flight is let answer: its verdict counts
        if attempt.approval is not None:
            if not self._settled_steps_started:
                settling = attempt.settling is not None
                confirmed = None if settling else await self._channel.confirm(attempt.approval)
                if isinstance(confirmed, Released):
                    await attempt.release(confirmed.status, confirmed.reason)
                    return False
                await self._settle_and_confirm()
            else:
                await self._receipt_and_mail_after_cancel()
            return True
        if attempt.holding:
            await attempt.release(PaymentStatus.CANCELLED, "Tentative annulée par l'opérateur")
        return False

    async def _receipt_and_mail_after_cancel(self) -> None:
        """Cancelled by the operator after the settlement's steps began: the notices already out are
        not restarted, but a receipt issued after the settlement is let finish, and the e-mail that
        was waiting for it still goes."""
        attempt = self._attempt
        if attempt.receipt is None:
            return
        await attempt.receipt_issued()
        email = attempt.inp.payer.email
        if email and not self._after.mail_begun:
            await self._after.confirm_by_mail(attempt.inp.payment_id, email)

    async def _settle_and_confirm(self) -> None:
        attempt = self._attempt
        assert attempt.approval is not None
        settlement = await attempt.settle(attempt.approval)
        if attempt.closing_rule and not settlement.applied:
            return
        self._settled_steps_started = True
        inp, view = attempt.inp, attempt.shown
        await self._after.follow(
            inp.payment_id,
            inp.payer.email,
            settlement.awaiting_emitters,
            view.transaction_id or "",
            inp.emitter_ack_deadline_seconds,
            still_awaiting=attempt.emitters_awaited,
            paid_at=attempt.settled_at,
            before_mail=attempt.receipt_issued,
        )
        await attempt.receipt_issued()  # the attempt ends with its receipt, e-mail or not

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
        if isinstance(outcome, Released) and attempt.closing_rule and not await attempt.close():
            assert attempt.approval is not None
            outcome = Paid(attempt.approval)  # accepted while the partner call in flight ended
        if isinstance(outcome, Released):
            await attempt.release(outcome.status, outcome.reason)
            await channel.after_release(outcome)
            return
        attempt.approval = outcome.approval
        await self._settle_and_confirm()
