"""Cheque and bank transfer: the payer declares, finance confirms that the money arrived, or rejects.

The invoices stay held, for days if need be (``OFFLINE_PAYMENT_DEADLINE_SECONDS``, 30 days), while
the workflow waits for finance's decision (an Update answering accepted or refused; a Signal for the
attempts started before it). Confirming encashment of a subscription invoice
extends the company's subscription, only then. Without a decision by the deadline the invoices are
released and finance is alerted by e-mail.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import cheque_transfer, mail
    from activities.cheque_transfer import DecisionLogInput, RenewalInput
    from activities.mail import ReferenceEmailInput
    from activities.types import NextAction, Reservation
    from portnet.statuses import Channel, PaymentStatus
    from workflows import details
    from workflows.attempt import Approval, Attempt
    from workflows.channels.base import Failed, Outcome, Paid, PayerAction, PaymentChannel, Released
    from workflows.policies import LEDGER_RETRY, LEDGER_TIMEOUT, MAIL_GIVE_UP, PARTNER_RETRY, PARTNER_TIMEOUT
    from workflows.types import FinanceDecision, FinanceVerdict

# The channels whose money finance confirms by hand (the web layer lists them for finance).
OFFLINE_CHANNELS = frozenset({Channel.CHEQUE.value, Channel.BANK_TRANSFER.value})


class ChequeTransfer(PaymentChannel):
    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt)
        self.finance: FinanceDecision | None = None

    async def start(self, reservation: Reservation) -> PayerAction | Failed:
        inp = self.attempt.inp
        await workflow.execute_activity(
            cheque_transfer.record_declaration,
            args=[inp.payment_id, inp.user_name, dict(inp.declaration or {})],
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
            summary="Enregistrement de la déclaration du payeur",
        )
        deadline = workflow.now() + timedelta(seconds=inp.payment_deadline_seconds)
        return PayerAction(NextAction(type="none"), deadline, PaymentStatus.AWAITING_CONFIRMATION)

    async def collect(self) -> Outcome:
        attempt, inp = self.attempt, self.attempt.inp
        try:
            await workflow.wait_condition(
                lambda: self.finance is not None or attempt.cancel_reason is not None,
                timeout=timedelta(seconds=inp.payment_deadline_seconds),
            )
        except TimeoutError:
            if self.finance is None and attempt.cancel_reason is None:
                return Released(
                    PaymentStatus.EXPIRED, "Encaissement non confirmé par la finance dans le délai"
                )
        decision = self.finance
        if decision is None:
            return Released(PaymentStatus.CANCELLED, attempt.cancel_reason or "Annulé")
        now = workflow.now()
        await workflow.execute_activity(
            cheque_transfer.log_finance_decision,
            DecisionLogInput(
                inp.payment_id, decision.user_name, decision.confirm, decision.reason, now.isoformat()
            ),
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
            summary="Décision de la finance au journal des messages",
        )
        if not decision.confirm:
            return Released(
                PaymentStatus.FAILED,
                f"Rejeté par la finance ({decision.user_name}) : {decision.reason or '-'}",
            )
        reference = self._reference()
        # The money is in the bank: only now may a subscription invoice extend the subscription.
        await workflow.execute_activity(
            cheque_transfer.renew_subscriptions,
            RenewalInput(inp.payment_id, now.isoformat()),
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
            summary="Renouvellement des abonnements réglés",
        )
        return Paid(attempt.approval or Approval(reference))

    def _reference(self) -> str:
        inp = self.attempt.inp
        declared = inp.declaration or {}
        return declared.get("cheque_number") or declared.get("transfer_reference") or inp.payment_id

    async def after_release(self, released: Released) -> None:
        """Nobody decided in time: finance hears of it (the invoices are already back)."""
        if released.status is not PaymentStatus.EXPIRED:
            return
        inp = self.attempt.inp
        try:
            await workflow.execute_activity(
                mail.send_channel_email,
                ReferenceEmailInput(inp.payment_id, inp.finance_alert_email, "offline_unconfirmed"),
                start_to_close_timeout=PARTNER_TIMEOUT,
                schedule_to_close_timeout=MAIL_GIVE_UP,
                retry_policy=PARTNER_RETRY,
                summary=details.mail("offline_unconfirmed"),
            )
        except ActivityError:
            workflow.logger.warning("offline_unconfirmed e-mail for %s not sent", inp.payment_id)

    def finance_decision(self, decision: FinanceDecision) -> None:
        """Finance confirms or rejects the declared cheque or transfer; the first decision counts."""
        view = self.attempt.view
        if (
            self.finance is None
            and view is not None
            and view.status == PaymentStatus.AWAITING_CONFIRMATION.value
            and not self.attempt.closing
        ):
            self.finance = decision

    def finance_decide(self, decision: FinanceDecision) -> FinanceVerdict:
        """Finance's decision under the closing rule: the first one counts, and a confirmation is the
        attempt's approval at once (nothing releases it after that); refused once the attempt closes."""
        attempt, view = self.attempt, self.attempt.view
        if self.finance is not None:
            if self.finance.confirm == decision.confirm:
                return FinanceVerdict(True, "Décision déjà enregistrée.")
            taken = "confirmé" if self.finance.confirm else "rejeté"
            return FinanceVerdict(False, f"Ce règlement a déjà été {taken} par {self.finance.user_name}.")
        if (
            view is None
            or view.status != PaymentStatus.AWAITING_CONFIRMATION.value
            or attempt.closing
            or attempt.cancel_reason is not None
        ):
            closed = "Ce règlement n'attend plus de confirmation : délai dépassé ou annulé."
            return FinanceVerdict(False, closed)
        self.finance = decision
        if decision.confirm:
            attempt.approve(Approval(self._reference()))
            return FinanceVerdict(True, "Encaissement confirmé.")
        return FinanceVerdict(True, "Règlement rejeté.")
