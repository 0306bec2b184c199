"""ApplyUnappliedWorkflow: finance applies unapplied money to an invoice, through a hold like any payment.

claim the money and hold the invoice (refused, changing nothing, while a live attempt holds it or
once it is paid) -> settle it as a payment on the money's own channel (receipt, invoice confirmed or
paid) -> the unapplied row marked applied -> the ``outcome`` Update answers finance -> confirmation
e-mail -> settlement notices to the emitters, and their acknowledgements (workflows/settlement.py).

One execution per unapplied row at a time (id ``unapplied-<row id>``): the web layer starts it with
update-with-start on ``outcome``, so a double submit joins the running application. Once the invoice
is held the application always completes, even if the run is cancelled: the money is taken.
Deterministic: time is workflow time, I/O is in activities.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import ledger, unapplied
    from activities.types import PayerInfo, SettleInput, Settlement
    from activities.unapplied import MarkAppliedInput, UnappliedHold, UnappliedHoldInput
    from portnet.statuses import InvoiceStatus
    from workflows import details
    from workflows.policies import LEDGER_RETRY, LEDGER_TIMEOUT
    from workflows.settlement import AfterSettlement
    from workflows.types import EmitterAck

APPLIED, REFUSED = "applied", "refused"


@dataclass
class ApplyUnappliedInput:
    unapplied_id: int
    invoice_number: str
    user_id: int | None
    user_name: str  # the finance user, in the invoice's message log
    emitter_ack_deadline_seconds: int


@dataclass
class ApplyOutcome:
    """What finance is told: ``applied`` (with the payment and the invoice's new status) or
    ``refused`` with a stable code and a French reason; nothing changed when refused."""

    status: str
    invoice_number: str
    payment_id: str | None = None
    channel: str | None = None
    invoice_status: str | None = None
    error_code: str | None = None
    reason: str | None = None


@workflow.defn
class ApplyUnappliedWorkflow:
    @workflow.init
    def __init__(self, inp: ApplyUnappliedInput) -> None:
        self._outcome: ApplyOutcome | None = None
        self._after = AfterSettlement()

    @workflow.update
    async def outcome(self) -> ApplyOutcome:
        """Returns once the money is applied or refused: the answer finance's page and API give."""
        await workflow.wait_condition(lambda: self._outcome is not None)
        assert self._outcome is not None
        return self._outcome

    @workflow.signal
    def emitter_acknowledged(self, ack: EmitterAck) -> None:
        self._after.acknowledged(ack)

    @workflow.run
    async def run(self, inp: ApplyUnappliedInput) -> ApplyOutcome:
        workflow.set_current_details(details.unapplied_phase("holding", inp.invoice_number))
        hold = await workflow.execute_activity(
            unapplied.hold_for_unapplied,
            UnappliedHoldInput(inp.unapplied_id, inp.invoice_number, inp.user_id, inp.user_name),
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
            summary=f"Réservation de la facture {inp.invoice_number}",
        )
        if not hold.ok:
            self._outcome = ApplyOutcome(
                REFUSED, inp.invoice_number, error_code=hold.error_code, reason=hold.error
            )
            workflow.set_current_details(details.unapplied_phase(REFUSED, inp.invoice_number, hold.error))
            return self._outcome
        workflow.set_current_details(details.unapplied_phase("applying", inp.invoice_number))
        # The invoice is held for money already taken: settle it whatever happens to this run.
        applying = asyncio.ensure_future(self._apply(inp, hold))
        try:
            settlement = await asyncio.shield(applying)
        except asyncio.CancelledError:
            await applying
            raise
        outcome = self._outcome
        assert outcome is not None
        workflow.set_current_details(details.unapplied_phase(outcome.status, inp.invoice_number))
        await self._after.follow(
            hold.payment_id,
            hold.payer_email,
            settlement.awaiting_emitters,
            hold.transaction_id,
            inp.emitter_ack_deadline_seconds,
            still_awaiting=lambda pending: None,
            paid_at=hold.paid_at,
        )
        return outcome

    async def _apply(self, inp: ApplyUnappliedInput, hold: UnappliedHold) -> Settlement:
        """The ledger's settlement of the held invoice, then the row applied; finance is answered."""
        settlement = await workflow.execute_activity(
            ledger.settle_payment,
            SettleInput(
                payment_id=hold.payment_id,
                channel=hold.channel,
                user_name=inp.user_name,
                transaction_id=hold.transaction_id,
                auth_code=None,
                masked_pan=None,
                paid_at=hold.paid_at,
                payer=PayerInfo(name=hold.payer_name, email=hold.payer_email),
            ),
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
            summary=details.settling(hold.channel),
        )
        await workflow.execute_activity(
            unapplied.mark_unapplied_applied,
            MarkAppliedInput(
                inp.unapplied_id, hold.payment_id, hold.invoice_id, hold.invoice_number, inp.user_name
            ),
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
            summary=f"Encaissement affecté à la facture {hold.invoice_number}",
        )
        status = InvoiceStatus.PAID if hold.settles_directly else InvoiceStatus.PAYMENT_CONFIRMED
        self._outcome = ApplyOutcome(
            APPLIED,
            hold.invoice_number,
            payment_id=hold.payment_id,
            channel=hold.channel,
            invoice_status=status.value,
        )
        return settlement
