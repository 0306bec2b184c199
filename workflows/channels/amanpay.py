"""Amanpay: the cash payment code (paid at a Tashilat agency) and the Amanty wallet.

Both are one Amanpay order and one signed notification to wait for:

- cash code: Amanpay issues a code, we e-mail it; we wait durably (72 h) for the notification, then
  cancel the code at Amanpay and release the invoices. A notification that comes after that is
  refused here and recorded by the web layer as an unapplied payment.
- Amanty: the payer is sent to the Amanty page; the notification settles, refusals (insufficient
  balance) are recorded and the payer may use another wallet, a cancel there releases.

``AmanpayChannel`` is what they share with PayDirect (workflows/channels/paydirect.py): Amanpay's
settings, the notifications, and the moment from which a notification no longer settles.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities import amanpay, mail
    from activities.amanpay import AmanpayOrderInput
    from activities.mail import CodeEmailInput
    from activities.types import Decline, NextAction, Reservation
    from portnet.statuses import Channel, PaymentStatus
    from workflows.attempt import Approval, Attempt
    from workflows.channels.base import Failed, Outcome, Paid, PayerAction, PaymentChannel, Released
    from workflows.policies import (
        CALL_GIVE_UP,
        CALL_RETRY,
        CALL_TIMEOUT,
        CODE_MAIL_GIVE_UP,
        CODE_MAIL_TIMEOUT,
        PARTNER_GIVE_UP,
        PARTNER_RETRY,
        PARTNER_TIMEOUT,
    )
    from workflows.types import AmanpayDecision, AmanpayNotice, AmanpaySettings

REFUSALS = {"insufficient_balance": "Solde Amanty insuffisant"}


class AmanpayChannel(PaymentChannel):
    """Amanpay's settings and signed notifications, shared by the cash code, Amanty and PayDirect."""

    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt)
        self.settings = attempt.inp.amanpay_settings or AmanpaySettings()
        # From here on a notification no longer settles: it becomes an unapplied payment.
        self.closing = False
        self.notices: set[str] = set()

    async def wait(self, seconds: float) -> bool:
        """Waits for the money or a cancel; False when ``seconds`` passed first."""
        try:
            await workflow.wait_condition(self.attempt.decided, timeout=max(seconds, 1))
        except TimeoutError:
            return False
        return True

    def amanpay_result(self, notice: AmanpayNotice) -> AmanpayDecision:
        """Amanpay's verified notification: cash code paid, Amanty paid, refused or cancelled."""
        attempt, view = self.attempt, self.attempt.view
        if view is None:
            return AmanpayDecision(False, "not an Amanpay attempt")
        if notice.event_id in self.notices:
            return AmanpayDecision(True, "replay of an event already taken")
        if view.status != PaymentStatus.AWAITING_PAYER.value or self.closing or attempt.closing:
            approval = attempt.approval
            paid = notice.status == "paid"
            if approval is not None and paid and notice.transaction_id == approval.transaction_id:
                return AmanpayDecision(True, "replay of the accepted payment")
            expired = " (code expired)" if self.closing or attempt.closing else ""
            return AmanpayDecision(False, f"attempt is {view.status}{expired}")
        if notice.amount != view.amount:
            return AmanpayDecision(False, "amount differs from the attempt")
        self.notices.add(notice.event_id)
        if notice.status == "paid":
            attempt.approve(Approval(notice.transaction_id))
            return AmanpayDecision(True, "paid")
        if notice.status == "refused":
            reason = REFUSALS.get(notice.reason, notice.reason or "Refus")
            refusal = Decline(notice.event_id, notice.reason or "refused", reason, workflow.now().isoformat())
            attempt.decline(refusal, reason)
            return AmanpayDecision(True, "refusal recorded; the payer may try again")
        if notice.status == "cancelled":
            attempt.cancel("Annulé par le payeur sur Amanty")
            return AmanpayDecision(True, "cancelled")
        return AmanpayDecision(False, f"unknown status {notice.status}")


class Amanpay(AmanpayChannel):
    """Cash payment code (``amanpay_code``) and Amanty (``amanpay_amanty``)."""

    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt)
        self.code: str | None = None
        self.deadline: datetime | None = None

    @property
    def is_code(self) -> bool:
        return self.attempt.inp.channel == Channel.AMANPAY_CODE.value

    async def start(self, reservation: Reservation) -> PayerAction | Failed:
        inp, s, payer = self.attempt.inp, self.settings, self.attempt.inp.amanpay
        try:
            order = await workflow.execute_activity(
                amanpay.create_order,
                AmanpayOrderInput(
                    payment_id=inp.payment_id,
                    method="code" if self.is_code else "amanty",
                    amount=reservation.amount,
                    email=inp.payer.email,
                    last_name=payer.last_name if payer else "",
                    first_name=payer.first_name if payer else "",
                    ttl_seconds=s.code_ttl_seconds if self.is_code else 0,
                ),
                start_to_close_timeout=CALL_TIMEOUT,
                schedule_to_close_timeout=CALL_GIVE_UP,
                retry_policy=CALL_RETRY,
                summary="Création de l'ordre Amanpay",
            )
        except ActivityError:
            return Failed("partner_unavailable", "Amanpay ne répond pas : réessayez dans quelques minutes.")
        if not order.ok:
            return Failed("partner_refused", order.error or "Commande refusée par Amanpay.")
        self.code = order.code
        seconds = s.code_ttl_seconds if self.is_code else s.redirect_deadline_seconds
        self.deadline = workflow.now() + timedelta(seconds=seconds)
        if self.is_code:
            action = NextAction(type="payment_code", code=order.code, expires_at=self.deadline.isoformat())
        else:
            action = NextAction(type="redirect", url=order.redirect_url)
        return PayerAction(action, self.deadline)

    async def collect(self) -> Outcome:
        attempt, inp, deadline = self.attempt, self.attempt.inp, self.deadline
        assert deadline is not None
        if self.is_code and self.code:
            await self._mail_code(self.code, deadline.isoformat())
        if not await self.wait((deadline - workflow.now()).total_seconds()):
            if attempt.closing_rule and not await attempt.close():
                assert attempt.approval is not None
                return Paid(attempt.approval)
            self.closing = True
            status = await self._cancel_order()
            if status == "paid":
                workflow.logger.warning(
                    "code of %s paid at the deadline: expect an unapplied payment", inp.payment_id
                )
            if self.is_code:
                return Released(PaymentStatus.EXPIRED, "Code de paiement expiré sans paiement")
            return Released(PaymentStatus.EXPIRED, "Délai de paiement Amanty dépassé")
        if attempt.approval is None:
            if attempt.closing_rule and not await attempt.close():
                assert attempt.approval is not None
                return Paid(attempt.approval)
            self.closing = True
            await self._cancel_order()
            return Released(PaymentStatus.CANCELLED, attempt.cancel_reason or "Annulé")
        return Paid(attempt.approval)

    async def _cancel_order(self) -> str:
        """Cancels the order at Amanpay (however long it takes); returns Amanpay's status after it.

        Under the closing rule a cancel that Amanpay never took (a day of outage) is logged and the
        invoices are released all the same ("unknown"): a payment that still comes in is unapplied money.
        """
        try:
            status: str = await workflow.execute_activity(
                amanpay.cancel_order,
                self.attempt.inp.payment_id,
                start_to_close_timeout=PARTNER_TIMEOUT,
                schedule_to_close_timeout=PARTNER_GIVE_UP,
                retry_policy=PARTNER_RETRY,
                summary="Annulation de l'ordre Amanpay",
            )
        except ActivityError as err:
            if not self.attempt.closing_rule or is_cancelled_exception(err):
                raise
            workflow.logger.warning("Amanpay order %s not cancelled: %s", self.attempt.inp.payment_id, err)
            return "unknown"
        return status

    async def _mail_code(self, code: str, expires_at: str) -> None:
        inp, payer = self.attempt.inp, self.attempt.inp.amanpay
        try:
            await workflow.execute_activity(
                mail.send_code_email,
                CodeEmailInput(
                    payment_id=inp.payment_id,
                    to=inp.payer.email,
                    code=code,
                    amount=self.attempt.shown.amount,
                    expires_at=expires_at,
                    last_name=payer.last_name if payer else "",
                    first_name=payer.first_name if payer else "",
                ),
                start_to_close_timeout=CODE_MAIL_TIMEOUT,
                schedule_to_close_timeout=CODE_MAIL_GIVE_UP,
                summary="E-mail du code de paiement Amanpay",
            )
        except ActivityError:
            workflow.logger.warning("payment code e-mail for %s not sent", inp.payment_id)
