"""What follows a settlement, in every workflow that settles invoices: the confirmation e-mail, then a
signed settlement notice to each emitter that does not settle directly, and its acknowledgement.

``AfterSettlement`` is owned by the workflow (a payment attempt, an application of unapplied money)
and fed the emitters' acknowledgements by its ``emitter_acknowledged`` Signal. Its commands (the
activities, their options, their order) are what recorded histories hold: change them only behind
``workflow.patched``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import emitters, ledger, mail
    from activities.emitters import EmitterNoticeInput
    from activities.mail import EmailInput
    from activities.types import MarkPaidInput
    from workflows import details
    from workflows.policies import (
        LEDGER_RETRY,
        LEDGER_TIMEOUT,
        PARTNER_GIVE_UP,
        PARTNER_RETRY,
        PARTNER_TIMEOUT,
    )
    from workflows.types import EmitterAck


# Since this patch the confirmation e-mail and the emitters' notices go out side by side (an SMTP
# outage no longer holds "paid" back from the emitters), and a notice's ``paid_at`` is when the
# payment was settled, not when the notice left.
MAIL_AND_NOTICES_TOGETHER = "mail-and-notices-together"


class AfterSettlement:
    def __init__(self, patched: Callable[[str], bool] | None = None) -> None:
        self.acks: dict[str, EmitterAck] = {}
        # The confirmation e-mail's activity has been scheduled (it may wait for the receipt first).
        self.mail_begun = False
        # How the owning workflow asks for a patch (a payment attempt answers for the rules it began on).
        self.patched = patched or workflow.patched

    async def follow(
        self,
        payment_id: str,
        email: str | None,
        awaiting: dict[str, list[str]],
        transaction_id: str,
        ack_deadline_seconds: int,
        still_awaiting: Callable[[list[str]], None],
        paid_at: str | None = None,
        before_mail: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """The e-mail (when there is an address) and the emitters' notices, for a settled payment.

        ``before_mail``: what the e-mail waits for (the receipt it attaches, issued after the
        settlement); the notices do not wait for it."""
        mail_step = self.confirm_by_mail(payment_id, email, before_mail) if email else None
        notices = (
            self.notify_emitters(
                payment_id, awaiting, transaction_id, ack_deadline_seconds, still_awaiting, paid_at
            )
            if awaiting
            else None
        )
        steps = [step for step in (mail_step, notices) if step is not None]
        if self.patched(MAIL_AND_NOTICES_TOGETHER):
            await asyncio.gather(*steps)
            return
        for step in steps:  # attempts begun before the patch: the e-mail first, then the notices
            await step

    def acknowledged(self, ack: EmitterAck) -> None:
        """An emitter's acknowledgement (the first one per emitter counts), whenever it arrives."""
        self.acks.setdefault(ack.emitter_code, ack)

    async def confirm_by_mail(
        self, payment_id: str, email: str, before_mail: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        if before_mail is not None:
            await before_mail()
        self.mail_begun = True
        try:
            await workflow.execute_activity(
                mail.send_payment_email,
                EmailInput(payment_id, email, "payment_confirmed"),
                start_to_close_timeout=PARTNER_TIMEOUT,
                schedule_to_close_timeout=PARTNER_GIVE_UP,
                retry_policy=PARTNER_RETRY,
                summary=details.mail("payment_confirmed"),
            )
        except ActivityError:
            # The money is in: a mail that cannot go out after a day of retries must not undo it.
            workflow.logger.warning("confirmation e-mail for %s not sent", payment_id)

    async def notify_emitters(
        self,
        payment_id: str,
        awaiting: dict[str, list[str]],
        transaction_id: str,
        ack_deadline_seconds: int,
        still_awaiting: Callable[[list[str]], None],
        paid_at: str | None = None,
    ) -> None:
        """Each emitter gets a signed settlement notice; its acknowledgement marks its invoices paid.

        ``still_awaiting`` is told the emitters still to acknowledge each time one does; ``paid_at``
        is when the payment was settled (the notice time for attempts begun before the patch).
        """
        paid_at = paid_at or workflow.now().isoformat()
        codes = sorted(awaiting)
        results = await asyncio.gather(
            *[
                workflow.execute_activity(
                    emitters.send_settlement_notice,
                    EmitterNoticeInput(payment_id, code, awaiting[code], transaction_id, paid_at),
                    start_to_close_timeout=PARTNER_TIMEOUT,
                    schedule_to_close_timeout=PARTNER_GIVE_UP,
                    retry_policy=PARTNER_RETRY,
                    summary=details.notice_to(code),
                )
                for code in codes
            ],
            return_exceptions=True,
        )
        # An emitter that could not take the notice keeps its invoices "Paiement confirmé" for finance.
        pending = {
            code for code, result in zip(codes, results, strict=True) if not isinstance(result, BaseException)
        }
        deadline = workflow.now() + timedelta(seconds=ack_deadline_seconds)
        while pending:
            remaining = (deadline - workflow.now()).total_seconds()
            try:
                await workflow.wait_condition(
                    lambda: bool(pending & set(self.acks)), timeout=max(remaining, 1)
                )
            except TimeoutError:
                workflow.logger.warning("emitters %s did not acknowledge %s", sorted(pending), payment_id)
                return
            for code in sorted(pending & set(self.acks)):
                await workflow.execute_activity(
                    ledger.mark_invoices_paid,
                    MarkPaidInput(payment_id, code, self.acks[code].emitter_ack_id),
                    start_to_close_timeout=LEDGER_TIMEOUT,
                    retry_policy=LEDGER_RETRY,
                    summary=details.marking_paid(code),
                )
                pending.discard(code)
                still_awaiting(sorted(pending))
