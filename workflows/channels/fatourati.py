"""CMI Fatourati: a 13-digit reference the payer pays at a bank channel before it expires.

One token at CMI for all the invoices, e-mailed with its deadline, a reminder before expiry if still
unpaid (a workflow timer). CMI's signed callback settles before the deadline; at the deadline the
token is cancelled at CMI and the invoices released. A payment that reaches us after the deadline,
after a cancel, or a second one on a paid reference, is answered ``unapplied``: the web layer keeps
it for finance, never drops it and never applies it silently.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import fatourati, mail
    from activities.fatourati import TokenInput
    from activities.mail import ReferenceEmailInput
    from activities.receipts import receipt_number
    from activities.types import Decline, NextAction, Reservation
    from portnet.statuses import PaymentStatus
    from workflows import details
    from workflows.attempt import Approval, Attempt
    from workflows.channels.base import Failed, Outcome, Paid, PayerAction, PaymentChannel, Released
    from workflows.policies import MAIL_GIVE_UP, PARTNER_RETRY, PARTNER_TIMEOUT, TOKEN_GIVE_UP
    from workflows.types import FatouratiDecision, FatouratiResult


class Fatourati(PaymentChannel):
    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt)
        self.paid: FatouratiResult | None = None
        self.closed = False  # the reference's deadline passed: any later payment is unapplied
        self.deadline: datetime | None = None
        # The reference and reminder e-mails go out beside the wait, never holding it up.
        self.mails: list[asyncio.Task[None]] = []

    async def start(self, reservation: Reservation) -> PayerAction | Failed:
        inp, view = self.attempt.inp, self.attempt.shown
        self.deadline = workflow.now() + timedelta(seconds=inp.payment_deadline_seconds)
        try:
            token = await workflow.execute_activity(
                fatourati.create_token,
                TokenInput(inp.payment_id, view.amount, self.deadline.isoformat(), inp.payer),
                start_to_close_timeout=PARTNER_TIMEOUT,
                schedule_to_close_timeout=TOKEN_GIVE_UP,
                retry_policy=PARTNER_RETRY,
                summary="Création de la référence Fatourati",
            )
        except ActivityError:
            return Failed("partner_unavailable", "Référence Fatourati indisponible, réessayez plus tard")
        expires_at = self.deadline.isoformat()
        action = NextAction(
            type="fatourati_reference",
            fields={"reference": token.reference, "expires_at": expires_at, "amount": view.amount},
        )
        return PayerAction(action, self.deadline)

    async def collect(self) -> Outcome:
        attempt, inp = self.attempt, self.attempt.inp
        assert self.deadline is not None
        self.mails.append(asyncio.ensure_future(self._mail(inp.payer.email, "fatourati_reference")))

        def settled_or_cancelled() -> bool:
            return self.paid is not None or attempt.cancel_reason is not None

        expiry = timedelta(seconds=inp.payment_deadline_seconds)
        reminder_at = expiry - timedelta(seconds=inp.reminder_before_seconds)
        if reminder_at.total_seconds() > 0:
            try:
                await workflow.wait_condition(settled_or_cancelled, timeout=reminder_at)
            except TimeoutError:
                if not settled_or_cancelled():
                    reminder = self._mail(inp.payer.email, "fatourati_reminder")
                    self.mails.append(asyncio.ensure_future(reminder))
        if not settled_or_cancelled():
            remaining = self.deadline - workflow.now()
            if remaining.total_seconds() > 0:
                try:
                    await workflow.wait_condition(settled_or_cancelled, timeout=remaining)
                except TimeoutError:
                    pass
        self.closed = self.paid is None  # from here on, a payment is money for finance, not these invoices
        if self.paid is not None or (attempt.closing_rule and not await attempt.close()):
            assert attempt.approval is not None
            return Paid(attempt.approval)
        try:
            await workflow.execute_activity(
                fatourati.cancel_token,
                inp.payment_id,
                start_to_close_timeout=PARTNER_TIMEOUT,
                schedule_to_close_timeout=MAIL_GIVE_UP,
                retry_policy=PARTNER_RETRY,
                summary="Annulation de la référence Fatourati",
            )
        except ActivityError:
            workflow.logger.warning("Fatourati token of %s not cancelled at CMI", inp.payment_id)
        if attempt.cancel_reason is not None:
            return Released(PaymentStatus.CANCELLED, attempt.cancel_reason)
        return Released(PaymentStatus.EXPIRED, "Référence Fatourati expirée (délai de paiement dépassé)")

    async def _mail(self, to: str, kind: str) -> None:
        inp = self.attempt.inp
        try:
            await workflow.execute_activity(
                mail.send_channel_email,
                ReferenceEmailInput(inp.payment_id, to, kind),
                start_to_close_timeout=PARTNER_TIMEOUT,
                schedule_to_close_timeout=MAIL_GIVE_UP,
                retry_policy=PARTNER_RETRY,
                summary=details.mail(kind),
            )
        except ActivityError:
            workflow.logger.warning("%s e-mail for %s not sent", kind, inp.payment_id)

    def fatourati_result(self, result: FatouratiResult) -> FatouratiDecision:
        """The verified callback; only the workflow knows, without a race, whether it still counts."""
        attempt, view = self.attempt, self.attempt.view
        if self.paid is not None:
            if result.transaction_number == self.paid.transaction_number:
                receipt = receipt_number(view.id if view else "")
                return FatouratiDecision("duplicate", "already settled", receipt)
            if result.decision_code == "0":
                return FatouratiDecision("unapplied", "the reference was already paid")
        if result.decision_code != "0":
            attempt.decline(
                Decline(
                    result.transaction_number,
                    result.decision_code,
                    "Paiement refusé par la banque",
                    workflow.now().isoformat(),
                ),
                f"Paiement refusé ({result.channel})",
            )
            return FatouratiDecision("refused", "refusal recorded; the invoices stay held until the deadline")
        expired = self.deadline is not None and workflow.now() >= self.deadline
        if (
            view is None
            or self.closed
            or attempt.closing
            or expired
            or attempt.cancel_reason is not None
            or not attempt.awaits_payer()
        ):
            status = "expired" if expired or self.closed else (view.status if view else "starting")
            return FatouratiDecision("unapplied", f"attempt is {status}: money kept for finance")
        if result.amount != view.amount:
            return FatouratiDecision("amount_mismatch", "amount differs from the reference")
        self.paid = result
        attempt.approve(Approval(result.transaction_number))
        return FatouratiDecision("accepted", "paid", receipt_number(view.id))
