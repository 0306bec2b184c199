"""CMI card: the payer's browser posts our signed form to CMI's hosted page; CMI's signed callback says.

Declines are recorded and the payer may try again until the deadline (CMI's page timeout and a
margin). Only the workflow decides, without a race, whether an approval still counts: it answers
CMI ``ACTION=POSTAUTH`` (capture) while the attempt waits for its payer, ``APPROVED`` (acknowledged,
not captured) otherwise.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import cmi_card
    from activities.cmi_card import CmiFormInput
    from activities.types import Decline, Reservation
    from portnet.statuses import PaymentStatus
    from workflows.attempt import Approval
    from workflows.channels.base import Failed, Outcome, Paid, PayerAction, PaymentChannel, Released
    from workflows.policies import CARD_FORM_TIMEOUT
    from workflows.types import CmiDecision, CmiResult


class CmiCard(PaymentChannel):
    async def start(self, reservation: Reservation) -> PayerAction | Failed:
        inp = self.attempt.inp
        form = await workflow.execute_local_activity(
            cmi_card.build_card_form,
            CmiFormInput(inp.payment_id, reservation.amount, inp.payer, reservation.client_name, inp.lang),
            start_to_close_timeout=CARD_FORM_TIMEOUT,
        )
        return PayerAction(form, workflow.now() + timedelta(seconds=inp.payment_deadline_seconds))

    async def collect(self) -> Outcome:
        attempt = self.attempt
        try:
            await workflow.wait_condition(
                attempt.decided, timeout=timedelta(seconds=attempt.inp.payment_deadline_seconds)
            )
        except TimeoutError:
            reason = "Délai de paiement dépassé"
            if attempt.declines:
                return Released(PaymentStatus.FAILED, f"{reason} après {len(attempt.declines)} refus")
            return Released(PaymentStatus.EXPIRED, reason)
        if attempt.approval is None:
            return Released(PaymentStatus.CANCELLED, attempt.cancel_reason or "Annulé")
        return Paid(attempt.approval)

    def cmi_result(self, result: CmiResult) -> CmiDecision:
        """CMI's verified callback. Capture only while the attempt still waits for its payer."""
        attempt, view = self.attempt, self.attempt.view
        if view is None or not attempt.awaits_payer() or attempt.closing:
            approval = attempt.approval
            if approval is not None and result.approved and result.trans_id == approval.transaction_id:
                return CmiDecision("ACTION=POSTAUTH", "replay of the accepted approval")
            state = "closing" if attempt.closing else (view.status if view else "starting")
            return CmiDecision("APPROVED", f"attempt is {state}: not captured")
        if result.amount != view.amount:
            return CmiDecision("APPROVED", "amount differs from the attempt: not captured")
        if not result.approved:
            attempt.decline(
                Decline(result.trans_id, result.proc_return_code, result.err_msg, workflow.now().isoformat()),
                result.err_msg or f"Refus (code {result.proc_return_code})",
            )
            return CmiDecision("APPROVED", "decline recorded; the payer may try again")
        attempt.approve(Approval(result.trans_id, result.auth_code, result.masked_pan))
        return CmiDecision("ACTION=POSTAUTH", "approved")
