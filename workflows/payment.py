"""PaymentWorkflow: one execution per payment attempt.

reserve the invoices -> give the payer the next action -> wait for the partner with a deadline ->
settle (or release) -> e-mail -> notify the emitters and wait for their acknowledgement.
Deterministic: time is workflow time, I/O is in activities, the partner's answer arrives as an
Update so the workflow alone decides, atomically, whether a callback still counts.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import cmi, emitters, ledger, notify
    from portnet.statuses import Channel, PaymentStatus
    from workflows import amanpay as amanpay_flow
    from workflows import channels
    from workflows.types import (
        AmanpayDecision,
        AmanpayNotice,
        CmiDecision,
        CmiFormInput,
        CmiResult,
        Decline,
        EmailInput,
        EmitterAck,
        EmitterNoticeInput,
        FatouratiDecision,
        FatouratiResult,
        FinanceDecision,
        MarkPaidInput,
        NextAction,
        PaymentInput,
        PaymentView,
        ReleaseInput,
        ReserveInput,
        SealedCode,
        SettleInput,
        SmsCodeOutcome,
        SmsResendOutcome,
    )

SA_CHANNEL = SearchAttributeKey.for_keyword("PaymentChannel")
SA_STATUS = SearchAttributeKey.for_keyword("PaymentStatus")
SA_CLIENT = SearchAttributeKey.for_keyword("ClientCode")
SA_EMITTER = SearchAttributeKey.for_keyword("EmitterCode")
SA_INVOICES = SearchAttributeKey.for_keyword_list("InvoiceNumbers")
SA_AMOUNT = SearchAttributeKey.for_float("AmountTTC")

# Ledger writes are local and quick; retry them patiently (a locked SQLite file, a PG failover).
LEDGER_TIMEOUT = timedelta(seconds=30)
LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["BusinessRefusal"],
)
# Partners and SMTP may be down for a while: back off up to a minute, for up to a day.
PARTNER_TIMEOUT = timedelta(seconds=30)
PARTNER_GIVE_UP = timedelta(days=1)
PARTNER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["BusinessRefusal"],
)


def search_attributes(
    inp: PaymentInput, client_code: str, emitters: list[str], numbers: list[str], amount: str
) -> TypedSearchAttributes:
    """Start-time attributes, so finance can find an attempt before its first activity ran."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_CHANNEL, inp.channel),
            SearchAttributePair(SA_STATUS, PaymentStatus.STARTED.value),
            SearchAttributePair(SA_CLIENT, client_code),
            SearchAttributePair(SA_EMITTER, ",".join(sorted(set(emitters)))),
            SearchAttributePair(SA_INVOICES, numbers),
            # A search index for the Web UI only, never read back as money.
            SearchAttributePair(SA_AMOUNT, float(amount)),
        ]
    )


@workflow.defn
class PaymentWorkflow:
    def __init__(self) -> None:
        self._view: PaymentView | None = None
        self._approved: CmiResult | None = None
        self._declines: list[Decline] = []
        self._cancel_reason: str | None = None
        self._acks: dict[str, EmitterAck] = {}
        self._ready = False
        # True while the invoices are held by this attempt: what a cancellation must give back.
        self._holding = False
        self._channels = channels.ChannelState()
        self._amanpay = amanpay_flow.AmanpayState()

    # --- reads ---------------------------------------------------------------------------------

    @workflow.query
    def state(self) -> PaymentView | None:
        return self._view

    @workflow.update
    async def ready(self) -> PaymentView:
        """Returns once the payer has something to do (or the attempt failed): the API's 201/409."""
        await workflow.wait_condition(lambda: self._ready)
        assert self._view is not None
        return self._view

    # --- partner and payer events --------------------------------------------------------------

    @workflow.update
    def cmi_result(self, result: CmiResult) -> CmiDecision:
        """CMI's verified callback. Capture only while the attempt still waits for its payer."""
        view = self._view
        if view is None or view.status != PaymentStatus.AWAITING_PAYER.value:
            if self._approved is not None and result.approved and result.trans_id == self._approved.trans_id:
                return CmiDecision("ACTION=POSTAUTH", "replay of the accepted approval")
            return CmiDecision("APPROVED", f"attempt is {view.status if view else 'starting'}: not captured")
        if result.amount != view.amount:
            return CmiDecision("APPROVED", "amount differs from the attempt: not captured")
        if not result.approved:
            self._declines.append(
                Decline(result.trans_id, result.proc_return_code, result.err_msg, workflow.now().isoformat())
            )
            view.declines = len(self._declines)
            view.last_decline = result.err_msg or f"Refus (code {result.proc_return_code})"
            return CmiDecision("APPROVED", "decline recorded; the payer may try again")
        self._approved = result
        self._set_status(PaymentStatus.AWAITING_CONFIRMATION)
        return CmiDecision("ACTION=POSTAUTH", "approved")

    @workflow.update
    def fatourati_result(self, result: FatouratiResult) -> FatouratiDecision:
        """CMI Fatourati's verified payment callback (issue 4; logic in workflows/channels.py)."""
        return channels.decide_fatourati(self, result)

    @workflow.signal
    def finance_decision(self, decision: FinanceDecision) -> None:
        """Finance confirms or rejects a declared cheque or transfer (issue 4)."""
        channels.accept_finance(self, decision)

    # Amanpay and PayDirect: the logic lives in workflows/amanpay.py.

    @workflow.update
    def amanpay_result(self, notice: AmanpayNotice) -> AmanpayDecision:
        """Amanpay's verified notification (cash code paid, Amanty paid/refused/cancelled)."""
        return amanpay_flow.on_notice(self, notice)

    @workflow.update
    async def sms_code(self, code: SealedCode) -> SmsCodeOutcome:
        """The PayDirect SMS code, sealed by the web layer; the bank compares it."""
        return await amanpay_flow.on_sms_code(self, code)

    @sms_code.validator
    def _validate_sms_code(self, code: SealedCode) -> None:
        amanpay_flow.validate_sms_code(self, code)

    @workflow.update
    async def sms_resend(self) -> SmsResendOutcome:
        return await amanpay_flow.on_sms_resend(self)

    @sms_resend.validator
    def _validate_sms_resend(self) -> None:
        amanpay_flow.validate_sms_resend(self)

    @workflow.signal
    def cancel(self, reason: str) -> None:
        if self._cancel_reason is None:
            self._cancel_reason = reason or "Annulé par le payeur"

    @workflow.signal
    def emitter_acknowledged(self, ack: EmitterAck) -> None:
        self._acks.setdefault(ack.emitter_code, ack)

    # --- the attempt ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: PaymentInput) -> PaymentView:
        wf_id = workflow.info().workflow_id
        self._view = PaymentView(
            id=inp.payment_id,
            workflow_id=wf_id,
            status=PaymentStatus.STARTED.value,
            channel=inp.channel,
            amount="0.00",
            invoice_ids=list(inp.invoice_ids),
        )
        try:
            return await self._attempt(inp, wf_id)
        except asyncio.CancelledError:
            # Cancelled from the Temporal UI or API: give the invoices back before we go.
            if self._holding:
                await asyncio.shield(
                    self._release(inp, PaymentStatus.CANCELLED, "Tentative annulée par l'opérateur")
                )
            raise

    async def _attempt(self, inp: PaymentInput, wf_id: str) -> PaymentView:
        view = self._view
        assert view is not None
        reservation = await workflow.execute_activity(
            ledger.reserve_invoices,
            ReserveInput(
                payment_id=inp.payment_id,
                workflow_id=wf_id,
                channel=inp.channel,
                company_id=inp.company_id,
                user_id=inp.user_id,
                user_name=inp.user_name,
                invoice_ids=inp.invoice_ids,
                payer_email=inp.payer.email,
            ),
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
        )
        if not reservation.ok:
            view.error_code, view.error = reservation.error_code, reservation.error
            self._set_status(PaymentStatus.FAILED)
            self._ready = True
            return view
        self._holding = True
        view.amount = reservation.amount
        view.invoice_numbers = [i.number for i in reservation.invoices]

        if inp.channel in channels.ISSUE4_CHANNELS:
            return await channels.run_channel(self, inp)
        if inp.channel in amanpay_flow.CHANNELS:
            await amanpay_flow.run(self, inp, reservation)
            return view

        if inp.channel != Channel.CMI_CARD.value:
            # Other channels come with their own issues; the API refuses them before we get here.
            await self._release(inp, PaymentStatus.FAILED, f"Canal non disponible: {inp.channel}")
            view.error_code = "channel_unavailable"
            self._ready = True
            return view

        form = await workflow.execute_local_activity(
            cmi.build_card_form,
            CmiFormInput(inp.payment_id, reservation.amount, inp.payer, reservation.client_name, inp.lang),
            start_to_close_timeout=timedelta(seconds=10),
        )
        view.next_action = NextAction(type="redirect_form", url=form.url, fields=form.fields)
        deadline = workflow.now() + timedelta(seconds=inp.payment_deadline_seconds)
        view.deadline = deadline.isoformat()
        self._set_status(PaymentStatus.AWAITING_PAYER)
        self._ready = True

        try:
            await workflow.wait_condition(
                lambda: self._approved is not None or self._cancel_reason is not None,
                timeout=timedelta(seconds=inp.payment_deadline_seconds),
            )
        except TimeoutError:
            reason = "Délai de paiement dépassé"
            if self._declines:
                await self._release(inp, PaymentStatus.FAILED, f"{reason} après {len(self._declines)} refus")
            else:
                await self._release(inp, PaymentStatus.EXPIRED, reason)
            return view

        if self._approved is None:
            await self._release(inp, PaymentStatus.CANCELLED, self._cancel_reason or "Annulé")
            return view

        await self._settle(inp)
        return view

    async def _settle(self, inp: PaymentInput) -> None:
        view = self._view
        approved = self._approved
        assert view is not None and approved is not None
        view.next_action = None
        view.transaction_id = approved.trans_id
        settlement = await workflow.execute_activity(
            ledger.settle_payment,
            SettleInput(
                payment_id=inp.payment_id,
                channel=inp.channel,
                user_name=inp.user_name,
                transaction_id=approved.trans_id,
                auth_code=approved.auth_code,
                masked_pan=approved.masked_pan,
                paid_at=workflow.now().isoformat(),
                payer=inp.payer,
                declines=self._declines,
            ),
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
        )
        self._holding = False
        view.receipt_document_id = settlement.receipt_document_id
        view.awaiting_emitters = sorted(settlement.awaiting_emitters)
        self._set_status(PaymentStatus.SUCCEEDED)

        try:
            await workflow.execute_activity(
                notify.send_payment_email,
                EmailInput(inp.payment_id, inp.payer.email, "payment_confirmed"),
                start_to_close_timeout=PARTNER_TIMEOUT,
                schedule_to_close_timeout=PARTNER_GIVE_UP,
                retry_policy=PARTNER_RETRY,
            )
        except ActivityError:
            # The money is in: a mail that cannot go out after a day of retries must not undo it.
            workflow.logger.warning("confirmation e-mail for %s not sent", inp.payment_id)

        if settlement.awaiting_emitters:
            await self._emitters(inp, settlement.awaiting_emitters, view.transaction_id or "")

    async def _emitters(self, inp: PaymentInput, awaiting: dict[str, list[str]], transaction_id: str) -> None:
        view = self._view
        assert view is not None
        paid_at = workflow.now().isoformat()
        codes = sorted(awaiting)
        results = await asyncio.gather(
            *[
                workflow.execute_activity(
                    emitters.send_settlement_notice,
                    EmitterNoticeInput(inp.payment_id, code, awaiting[code], transaction_id, paid_at),
                    start_to_close_timeout=PARTNER_TIMEOUT,
                    schedule_to_close_timeout=PARTNER_GIVE_UP,
                    retry_policy=PARTNER_RETRY,
                )
                for code in codes
            ],
            return_exceptions=True,
        )
        # An emitter that could not take the notice keeps its invoices "Paiement confirmé" for finance.
        pending = {
            code for code, result in zip(codes, results, strict=True) if not isinstance(result, BaseException)
        }
        deadline = workflow.now() + timedelta(seconds=inp.emitter_ack_deadline_seconds)
        while pending:
            remaining = (deadline - workflow.now()).total_seconds()
            try:
                await workflow.wait_condition(
                    lambda: bool(pending & set(self._acks)), timeout=max(remaining, 1)
                )
            except TimeoutError:
                workflow.logger.warning("emitters %s did not acknowledge %s", sorted(pending), inp.payment_id)
                return
            for code in sorted(pending & set(self._acks)):
                await workflow.execute_activity(
                    ledger.mark_invoices_paid,
                    MarkPaidInput(inp.payment_id, code, self._acks[code].emitter_ack_id),
                    start_to_close_timeout=LEDGER_TIMEOUT,
                    retry_policy=LEDGER_RETRY,
                )
                pending.discard(code)
                view.awaiting_emitters = sorted(pending)

    async def _release(self, inp: PaymentInput, status: PaymentStatus, reason: str) -> None:
        view = self._view
        assert view is not None
        view.next_action = None
        await workflow.execute_activity(
            ledger.release_invoices,
            ReleaseInput(inp.payment_id, inp.channel, inp.user_name, status.value, reason, self._declines),
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
        )
        self._holding = False
        view.error = view.error or reason
        self._set_status(status)

    def _set_status(self, status: PaymentStatus) -> None:
        assert self._view is not None
        self._view.status = status.value
        workflow.upsert_search_attributes([SA_STATUS.value_set(status.value)])
