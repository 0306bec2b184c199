"""Amanpay PayDirect: the bank checks the payer's contract and sends a 6-digit code by SMS.

The code reaches the workflow only sealed (portnet/protocols/amanpay.py) through the ``sms_code``
Update, whose validator rejects a malformed submission or a wrong state before anything is written
to history; the handler gives the sealed code to an activity that opens it and asks the bank, which
compares in constant time. Rules: a code lives ``otp_ttl_seconds`` and is single use; 3 wrong tries
kill it; a new code at most every ``resend_interval_seconds`` and ``max_resends`` times; the whole
step times out after ``step_timeout_seconds`` and releases.

Under the closing rule the bank calls (a verification, a new code) run one at a time behind the
attempt's partner lock, each re-checking the state once it has the lock; a cancel or the deadline
closes the attempt at once for new calls and lets the call in flight end (its verdict counts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import paydirect
    from activities.paydirect import PayDirectStartInput, PayDirectVerifyInput
    from activities.types import NextAction, Reservation
    from portnet.statuses import PaymentStatus
    from workflows.attempt import Approval, Attempt
    from workflows.channels.amanpay import AmanpayChannel
    from workflows.channels.base import NO_SMS_CODE, Failed, Outcome, Paid, PayerAction, Released
    from workflows.policies import CALL_GIVE_UP, CALL_RETRY, CALL_TIMEOUT
    from workflows.types import SealedCode, SmsCodeOutcome, SmsResendOutcome

# A sealed code as the web layer makes it (Fernet token); the digits themselves never get here.
SEALED = re.compile(r"^gAAAAA[A-Za-z0-9_\-=]{40,400}$")


@dataclass
class SmsStep:
    """The code the bank sent last, and what the payer may still do with it."""

    auth_ref: str
    otp_expires: datetime
    attempts_left: int
    last_sent: datetime
    dead: bool = False
    resends: int = 0
    verifying: bool = False
    requests: int = 0


def _iso(instant: datetime) -> str:
    return instant.isoformat(timespec="seconds")


class PayDirect(AmanpayChannel):
    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt)
        self.sms: SmsStep | None = None

    async def start(self, reservation: Reservation) -> PayerAction | Failed:
        inp, s, payer = self.attempt.inp, self.settings, self.attempt.inp.amanpay
        if payer is None:
            return Failed("invalid_payer", "Informations PayDirect manquantes.")
        try:
            start = await workflow.execute_activity(
                paydirect.paydirect_start,
                PayDirectStartInput(
                    payment_id=inp.payment_id,
                    amount=reservation.amount,
                    contract_number=payer.contract_number,
                    cin=payer.cin,
                    mandataire=payer.mandataire,
                    phone=payer.phone,
                    email=inp.payer.email,
                ),
                start_to_close_timeout=CALL_TIMEOUT,
                schedule_to_close_timeout=CALL_GIVE_UP,
                retry_policy=CALL_RETRY,
                summary="Ouverture du paiement PayDirect",
            )
        except ActivityError:
            return Failed("partner_unavailable", "PayDirect ne répond pas : réessayez dans quelques minutes.")
        if not start.ok:
            return Failed(start.error_code or "paydirect_refused", start.error or "Contrat PayDirect refusé.")
        now = workflow.now()
        self.sms = SmsStep(
            auth_ref=start.auth_ref,
            otp_expires=now + timedelta(seconds=s.otp_ttl_seconds),
            attempts_left=start.attempts_left,
            last_sent=now,
        )
        return PayerAction(self._action(self.sms), now + timedelta(seconds=s.step_timeout_seconds))

    async def collect(self) -> Outcome:
        attempt, sms = self.attempt, self.sms
        assert sms is not None
        if attempt.closing_rule:
            # The workflow closes the attempt (``Attempt.close``) before it releases anything.
            if not await self.wait(self.settings.step_timeout_seconds):
                return Released(PaymentStatus.EXPIRED, "Délai de saisie du code SMS dépassé")
            if attempt.approval is None:
                return Released(PaymentStatus.CANCELLED, attempt.cancel_reason or "Annulé")
            return Paid(attempt.approval)
        if not await self.wait(self.settings.step_timeout_seconds):
            # A verification in flight at the deadline is let finish: the bank may have authorized.
            await workflow.wait_condition(lambda: not sms.verifying)
            if attempt.approval is None:
                self.closing = True
                return Released(PaymentStatus.EXPIRED, "Délai de saisie du code SMS dépassé")
        if attempt.approval is None:
            self.closing = True
            return Released(PaymentStatus.CANCELLED, attempt.cancel_reason or "Annulé")
        return Paid(attempt.approval)

    def _action(self, sms: SmsStep) -> NextAction:
        s = self.settings
        return NextAction(
            type="sms_code",
            expires_at=_iso(sms.otp_expires),
            attempts_left=0 if sms.dead else sms.attempts_left,
            resends_left=max(s.max_resends - sms.resends, 0),
            resend_at=_iso(sms.last_sent + timedelta(seconds=s.resend_interval_seconds)),
        )

    def _show(self, sms: SmsStep) -> None:
        self.attempt.shown.next_action = self._action(sms)
        self.attempt.show_phase()

    def _step(self) -> SmsStep:
        """The SMS step, if the payer may act on it now."""
        view, sms = self.attempt.view, self.sms
        if view is None or sms is None:
            raise ApplicationError(NO_SMS_CODE, type="wrong_state")
        if view.status != PaymentStatus.AWAITING_PAYER.value or self.closing or self.attempt.closing:
            raise ApplicationError("Ce paiement n'attend plus de code SMS.", type="wrong_state")
        return sms

    # --- the payer's Updates --------------------------------------------------------------------------

    def validate_sms_code(self, code: SealedCode) -> None:
        """Runs before the Update is accepted: a rejection leaves no trace in history."""
        if not isinstance(code.sealed, str) or not SEALED.match(code.sealed):
            raise ApplicationError("Format de code invalide.", type="bad_format")
        sms = self._step()
        if sms.dead:
            raise ApplicationError(
                "Ce code est bloqué après 3 essais : demandez un nouveau code.", type="code_dead"
            )
        if workflow.now() >= sms.otp_expires:
            raise ApplicationError("Ce code a expiré : demandez un nouveau code.", type="code_expired")

    async def sms_code(self, code: SealedCode) -> SmsCodeOutcome:
        """The sealed code goes to the bank, one verification at a time; the bank's verdict is final."""
        sms = self._step()
        if self.attempt.closing_rule:
            async with self.attempt.partner_lock:
                self.validate_sms_code(code)  # the state may have moved while we waited our turn
                return await self._verify(sms, code)
        await workflow.wait_condition(lambda: not sms.verifying)
        self.validate_sms_code(code)  # the state may have moved while we waited our turn
        return await self._verify(sms, code)

    async def _verify(self, sms: SmsStep, code: SealedCode) -> SmsCodeOutcome:
        view = self.attempt.shown
        sms.verifying = True
        sms.requests += 1
        try:
            verdict = await workflow.execute_activity(
                paydirect.paydirect_verify,
                PayDirectVerifyInput(
                    view.id, sms.auth_ref, code.sealed, f"{view.workflow_id}-otp-{sms.requests}"
                ),
                start_to_close_timeout=CALL_TIMEOUT,
                schedule_to_close_timeout=CALL_GIVE_UP,
                retry_policy=CALL_RETRY,
                summary="Vérification du code SMS PayDirect",
            )
        except ActivityError:
            raise ApplicationError("La banque ne répond pas : réessayez.", type="bank_unavailable") from None
        finally:
            sms.verifying = False
        if verdict.result == "authorized":
            view.next_action = None
            self.attempt.approve(Approval(verdict.transaction_id, verdict.authorization_code or None))
            return SmsCodeOutcome("authorized", sms.attempts_left, "Paiement autorisé par la banque.")
        if verdict.result == "wrong":
            sms.attempts_left = verdict.attempts_left
            self._show(sms)
            left = sms.attempts_left
            message = f"Code incorrect. Il vous reste {left} essai{'s' if left > 1 else ''}."
            return SmsCodeOutcome("wrong", left, message)
        if verdict.result == "dead":
            sms.dead, sms.attempts_left = True, 0
            self._show(sms)
            return SmsCodeOutcome(
                "dead", 0, "Code incorrect, trop d'essais : ce code est bloqué, demandez un nouveau code."
            )
        sms.otp_expires = workflow.now()
        self._show(sms)
        return SmsCodeOutcome("expired", 0, "Ce code a expiré : demandez un nouveau code.")

    def validate_sms_resend(self) -> None:
        sms = self._step()
        if sms.verifying or (self.attempt.closing_rule and self.attempt.partner_lock.locked()):
            raise ApplicationError("Vérification en cours, patientez.", type="busy")
        self._may_resend(sms)

    def _may_resend(self, sms: SmsStep) -> None:
        s = self.settings
        if sms.resends >= s.max_resends:
            message = f"Vous avez déjà demandé {s.max_resends} nouveaux codes pour ce paiement."
            raise ApplicationError(message, type="resend_limit")
        wait = (sms.last_sent + timedelta(seconds=s.resend_interval_seconds) - workflow.now()).total_seconds()
        if wait > 0:
            seconds = int(wait) + (1 if wait % 1 else 0)
            raise ApplicationError(
                f"Patientez {seconds} s avant de demander un nouveau code.", seconds, type="resend_too_soon"
            )

    async def sms_resend(self) -> SmsResendOutcome:
        """A new code by SMS: fresh validity and tries."""
        sms = self._step()
        if self.attempt.closing_rule:
            async with self.attempt.partner_lock:
                self._may_resend(self._step())  # a resend accepted beside this one may have gone first
                return await self._resend(sms)
        return await self._resend(sms)

    async def _resend(self, sms: SmsStep) -> SmsResendOutcome:
        s = self.settings
        sms.resends += 1
        sms.last_sent = workflow.now()
        attempts = await workflow.execute_activity(
            paydirect.paydirect_resend,
            sms.auth_ref,
            start_to_close_timeout=CALL_TIMEOUT,
            schedule_to_close_timeout=CALL_GIVE_UP,
            retry_policy=CALL_RETRY,
            summary="Renvoi du code SMS PayDirect",
        )
        sms.otp_expires = workflow.now() + timedelta(seconds=s.otp_ttl_seconds)
        sms.attempts_left, sms.dead = attempts, False
        self._show(sms)
        return SmsResendOutcome(_iso(sms.otp_expires), max(s.max_resends - sms.resends, 0))
