"""The Amanpay sub-channels inside PaymentWorkflow: cash payment code, Amanty wallet, PayDirect.

Same reservation, same settlement, same release as the card; what differs is how the payer pays and
how we learn about it:

- cash code: Amanpay issues a code, we e-mail it; we wait durably for Amanpay's signed notification
  until the code expires, then cancel the code at Amanpay and release the invoices. A notification
  that comes after that is refused here and recorded by the web layer as an unapplied payment.
- Amanty: the payer is sent to the Amanty page; Amanpay's signed notification settles, refusals
  (insufficient balance) are recorded, a cancel there releases.
- PayDirect: the bank checks the contract and sends an SMS code. The code reaches the workflow only
  sealed (see portnet/amanpay_protocol.py) through the ``sms_code`` Update, whose validator rejects a
  malformed submission or a wrong state before anything is written to history; the handler gives the
  sealed code to an activity that opens it and asks the bank, which compares in constant time.

Functions here take the workflow instance; PaymentWorkflow only declares the Updates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import amanpay, amanpay_mail
    from portnet.statuses import Channel, PaymentStatus
    from workflows.types import (
        AmanpayDecision,
        AmanpayNotice,
        AmanpayOrderInput,
        AmanpaySettings,
        CmiResult,
        CodeEmailInput,
        Decline,
        NextAction,
        PayDirectStartInput,
        PayDirectVerifyInput,
        PaymentInput,
        Reservation,
        SealedCode,
        SmsCodeOutcome,
        SmsResendOutcome,
    )

if TYPE_CHECKING:
    from workflows.payment import PaymentWorkflow

CHANNELS = frozenset(
    {Channel.AMANPAY_CODE.value, Channel.AMANPAY_AMANTY.value, Channel.AMANPAY_PAYDIRECT.value}
)
# A sealed code as the web layer makes it (Fernet token); the digits themselves never get here.
SEALED = re.compile(r"^gAAAAA[A-Za-z0-9_\-=]{40,400}$")

# The payer is waiting on the API call while we talk to the partner: fail fast rather than hang.
CALL_TIMEOUT = timedelta(seconds=20)
CALL_GIVE_UP = timedelta(seconds=60)
CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=["BusinessRefusal"],
)
# Cancelling a code may wait for the partner for a long time.
PATIENT_TIMEOUT = timedelta(seconds=30)
PATIENT_GIVE_UP = timedelta(days=1)
PATIENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["BusinessRefusal"],
)


@dataclass
class SmsStep:
    auth_ref: str
    otp_expires: datetime
    attempts_left: int
    last_sent: datetime
    dead: bool = False
    resends: int = 0
    verifying: bool = False
    requests: int = 0


@dataclass
class AmanpayState:
    closing: bool = False
    settings: AmanpaySettings = field(default_factory=AmanpaySettings)
    notices: set[str] = field(default_factory=set)
    sms: SmsStep | None = None


def _iso(instant: datetime) -> str:
    return instant.isoformat(timespec="seconds")


# --- notifications ------------------------------------------------------------------------------


def on_notice(wf: PaymentWorkflow, notice: AmanpayNotice) -> AmanpayDecision:
    view = wf._view
    state = wf._amanpay
    if view is None or view.channel not in CHANNELS:
        return AmanpayDecision(False, "not an Amanpay attempt")
    if notice.event_id in state.notices:
        return AmanpayDecision(True, "replay of an event already taken")
    if view.status != PaymentStatus.AWAITING_PAYER.value or state.closing:
        if (
            wf._approved is not None
            and notice.status == "paid"
            and notice.transaction_id == wf._approved.trans_id
        ):
            return AmanpayDecision(True, "replay of the accepted payment")
        return AmanpayDecision(False, f"attempt is {view.status}{' (code expired)' if state.closing else ''}")
    if notice.amount != view.amount:
        return AmanpayDecision(False, "amount differs from the attempt")
    state.notices.add(notice.event_id)
    if notice.status == "paid":
        wf._approved = CmiResult(
            callback_id=notice.callback_id,
            approved=True,
            proc_return_code="00",
            trans_id=notice.transaction_id,
            amount=notice.amount,
        )
        wf._set_status(PaymentStatus.AWAITING_CONFIRMATION)
        return AmanpayDecision(True, "paid")
    if notice.status == "refused":
        reason = {"insufficient_balance": "Solde Amanty insuffisant"}.get(
            notice.reason, notice.reason or "Refus"
        )
        wf._declines.append(
            Decline(notice.event_id, notice.reason or "refused", reason, workflow.now().isoformat())
        )
        view.declines = len(wf._declines)
        view.last_decline = reason
        return AmanpayDecision(True, "refusal recorded; the payer may try again")
    if notice.status == "cancelled":
        if wf._cancel_reason is None:
            wf._cancel_reason = "Annulé par le payeur sur Amanty"
        return AmanpayDecision(True, "cancelled")
    return AmanpayDecision(False, f"unknown status {notice.status}")


# --- the attempt --------------------------------------------------------------------------------


async def run(wf: PaymentWorkflow, inp: PaymentInput, reservation: Reservation) -> None:
    wf._amanpay.settings = inp.amanpay_settings or AmanpaySettings()
    if inp.channel == Channel.AMANPAY_PAYDIRECT.value:
        await _paydirect(wf, inp, reservation)
    else:
        await _order(wf, inp, reservation)


async def _fail(wf: PaymentWorkflow, inp: PaymentInput, code: str, message: str) -> None:
    view = wf._view
    assert view is not None
    view.error_code, view.error = code, message
    await wf._release(inp, PaymentStatus.FAILED, message)
    wf._ready = True


async def _wait(wf: PaymentWorkflow, seconds: float) -> bool:
    try:
        await workflow.wait_condition(
            lambda: wf._approved is not None or wf._cancel_reason is not None, timeout=max(seconds, 1)
        )
    except TimeoutError:
        return False
    return True


async def _order(wf: PaymentWorkflow, inp: PaymentInput, reservation: Reservation) -> None:
    """Cash payment code and Amanty: one Amanpay order, one signed notification to wait for."""
    view = wf._view
    assert view is not None
    s = inp.amanpay_settings or AmanpaySettings()
    payer = inp.amanpay
    is_code = inp.channel == Channel.AMANPAY_CODE.value
    try:
        order = await workflow.execute_activity(
            amanpay.create_order,
            AmanpayOrderInput(
                payment_id=inp.payment_id,
                method="code" if is_code else "amanty",
                amount=reservation.amount,
                email=inp.payer.email,
                last_name=payer.last_name if payer else "",
                first_name=payer.first_name if payer else "",
                ttl_seconds=s.code_ttl_seconds if is_code else 0,
            ),
            start_to_close_timeout=CALL_TIMEOUT,
            schedule_to_close_timeout=CALL_GIVE_UP,
            retry_policy=CALL_RETRY,
        )
    except ActivityError:
        await _fail(
            wf, inp, "partner_unavailable", "Amanpay ne répond pas : réessayez dans quelques minutes."
        )
        return
    if not order.ok:
        await _fail(wf, inp, "partner_refused", order.error or "Commande refusée par Amanpay.")
        return
    seconds = s.code_ttl_seconds if is_code else s.redirect_deadline_seconds
    deadline = workflow.now() + timedelta(seconds=seconds)
    view.deadline = deadline.isoformat()
    if is_code:
        view.next_action = NextAction(type="payment_code", code=order.code, expires_at=view.deadline)
    else:
        view.next_action = NextAction(type="redirect", url=order.redirect_url)
    wf._set_status(PaymentStatus.AWAITING_PAYER)
    wf._ready = True

    if is_code and order.code:
        try:
            await workflow.execute_activity(
                amanpay_mail.send_code_email,
                CodeEmailInput(
                    payment_id=inp.payment_id,
                    to=inp.payer.email,
                    code=order.code,
                    amount=reservation.amount,
                    expires_at=view.deadline,
                    last_name=payer.last_name if payer else "",
                    first_name=payer.first_name if payer else "",
                ),
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(hours=1),
            )
        except ActivityError:
            workflow.logger.warning("payment code e-mail for %s not sent", inp.payment_id)

    remaining = (deadline - workflow.now()).total_seconds()
    if not await _wait(wf, remaining):
        # From here on a notification no longer settles: it becomes an unapplied payment.
        wf._amanpay.closing = True
        status = await workflow.execute_activity(
            amanpay.cancel_order,
            inp.payment_id,
            start_to_close_timeout=PATIENT_TIMEOUT,
            schedule_to_close_timeout=PATIENT_GIVE_UP,
            retry_policy=PATIENT_RETRY,
        )
        if status == "paid":
            workflow.logger.warning(
                "code of %s paid at the deadline: expect an unapplied payment", inp.payment_id
            )
        reason = "Code de paiement expiré sans paiement" if is_code else "Délai de paiement Amanty dépassé"
        await wf._release(inp, PaymentStatus.EXPIRED, reason)
        return
    if wf._approved is None:
        wf._amanpay.closing = True
        await workflow.execute_activity(
            amanpay.cancel_order,
            inp.payment_id,
            start_to_close_timeout=PATIENT_TIMEOUT,
            schedule_to_close_timeout=PATIENT_GIVE_UP,
            retry_policy=PATIENT_RETRY,
        )
        await wf._release(inp, PaymentStatus.CANCELLED, wf._cancel_reason or "Annulé")
        return
    await wf._settle(inp)


# --- PayDirect ------------------------------------------------------------------------------------


def _sms_action(wf: PaymentWorkflow, s: AmanpaySettings) -> None:
    view, sms = wf._view, wf._amanpay.sms
    assert view is not None and sms is not None
    view.next_action = NextAction(
        type="sms_code",
        expires_at=_iso(sms.otp_expires),
        attempts_left=0 if sms.dead else sms.attempts_left,
        resends_left=max(s.max_resends - sms.resends, 0),
        resend_at=_iso(sms.last_sent + timedelta(seconds=s.resend_interval_seconds)),
    )


async def _paydirect(wf: PaymentWorkflow, inp: PaymentInput, reservation: Reservation) -> None:
    view = wf._view
    assert view is not None
    s = inp.amanpay_settings or AmanpaySettings()
    payer = inp.amanpay
    if payer is None:
        await _fail(wf, inp, "invalid_payer", "Informations PayDirect manquantes.")
        return
    try:
        start = await workflow.execute_activity(
            amanpay.paydirect_start,
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
        )
    except ActivityError:
        await _fail(
            wf, inp, "partner_unavailable", "PayDirect ne répond pas : réessayez dans quelques minutes."
        )
        return
    if not start.ok:
        await _fail(
            wf, inp, start.error_code or "paydirect_refused", start.error or "Contrat PayDirect refusé."
        )
        return
    now = workflow.now()
    wf._amanpay.sms = SmsStep(
        auth_ref=start.auth_ref,
        otp_expires=now + timedelta(seconds=s.otp_ttl_seconds),
        attempts_left=start.attempts_left,
        last_sent=now,
    )
    _sms_action(wf, s)
    view.deadline = (now + timedelta(seconds=s.step_timeout_seconds)).isoformat()
    wf._set_status(PaymentStatus.AWAITING_PAYER)
    wf._ready = True

    if not await _wait(wf, s.step_timeout_seconds):
        sms = wf._amanpay.sms
        # A verification in flight at the deadline is let finish: the bank may have authorized.
        await workflow.wait_condition(lambda: not sms.verifying)
        if wf._approved is None:
            wf._amanpay.closing = True
            await wf._release(inp, PaymentStatus.EXPIRED, "Délai de saisie du code SMS dépassé")
            return
    if wf._approved is None:
        wf._amanpay.closing = True
        await wf._release(inp, PaymentStatus.CANCELLED, wf._cancel_reason or "Annulé")
        return
    await wf._settle(inp)


def _sms_state(wf: PaymentWorkflow) -> SmsStep:
    view, sms = wf._view, wf._amanpay.sms
    if view is None or view.channel != Channel.AMANPAY_PAYDIRECT.value or sms is None:
        raise ApplicationError("Aucun code SMS n'est attendu pour ce paiement.", type="wrong_state")
    if view.status != PaymentStatus.AWAITING_PAYER.value or wf._amanpay.closing:
        raise ApplicationError("Ce paiement n'attend plus de code SMS.", type="wrong_state")
    return sms


def validate_sms_code(wf: PaymentWorkflow, code: SealedCode) -> None:
    """Runs before the Update is accepted: a rejection leaves no trace in history."""
    if not isinstance(code.sealed, str) or not SEALED.match(code.sealed):
        raise ApplicationError("Format de code invalide.", type="bad_format")
    sms = _sms_state(wf)
    if sms.dead:
        raise ApplicationError(
            "Ce code est bloqué après 3 essais : demandez un nouveau code.", type="code_dead"
        )
    if workflow.now() >= sms.otp_expires:
        raise ApplicationError("Ce code a expiré : demandez un nouveau code.", type="code_expired")


async def on_sms_code(wf: PaymentWorkflow, code: SealedCode) -> SmsCodeOutcome:
    s = wf._amanpay.settings
    sms = _sms_state(wf)
    await workflow.wait_condition(lambda: not sms.verifying)
    validate_sms_code(wf, code)  # the state may have moved while we waited our turn
    view = wf._view
    assert view is not None
    sms.verifying = True
    sms.requests += 1
    try:
        verdict = await workflow.execute_activity(
            amanpay.paydirect_verify,
            PayDirectVerifyInput(
                view.id, sms.auth_ref, code.sealed, f"{view.workflow_id}-otp-{sms.requests}"
            ),
            start_to_close_timeout=CALL_TIMEOUT,
            schedule_to_close_timeout=CALL_GIVE_UP,
            retry_policy=CALL_RETRY,
        )
    except ActivityError:
        raise ApplicationError("La banque ne répond pas : réessayez.", type="bank_unavailable") from None
    finally:
        sms.verifying = False
    if verdict.result == "authorized":
        wf._approved = CmiResult(
            callback_id=0,
            approved=True,
            proc_return_code="00",
            trans_id=verdict.transaction_id,
            amount=view.amount,
            auth_code=verdict.authorization_code or None,
        )
        view.next_action = None
        wf._set_status(PaymentStatus.AWAITING_CONFIRMATION)
        return SmsCodeOutcome("authorized", sms.attempts_left, "Paiement autorisé par la banque.")
    if verdict.result == "wrong":
        sms.attempts_left = verdict.attempts_left
        _sms_action(wf, s)
        plural = "s" if sms.attempts_left > 1 else ""
        return SmsCodeOutcome(
            "wrong", sms.attempts_left, f"Code incorrect. Il vous reste {sms.attempts_left} essai{plural}."
        )
    if verdict.result == "dead":
        sms.dead, sms.attempts_left = True, 0
        _sms_action(wf, s)
        return SmsCodeOutcome(
            "dead", 0, "Code incorrect, trop d'essais : ce code est bloqué, demandez un nouveau code."
        )
    sms.otp_expires = workflow.now()
    _sms_action(wf, s)
    return SmsCodeOutcome("expired", 0, "Ce code a expiré : demandez un nouveau code.")


def validate_sms_resend(wf: PaymentWorkflow) -> None:
    s = wf._amanpay.settings
    sms = _sms_state(wf)
    if sms.verifying:
        raise ApplicationError("Vérification en cours, patientez.", type="busy")
    if sms.resends >= s.max_resends:
        raise ApplicationError(
            f"Vous avez déjà demandé {s.max_resends} nouveaux codes pour ce paiement.", type="resend_limit"
        )
    wait = (sms.last_sent + timedelta(seconds=s.resend_interval_seconds) - workflow.now()).total_seconds()
    if wait > 0:
        seconds = int(wait) + (1 if wait % 1 else 0)
        raise ApplicationError(
            f"Patientez {seconds} s avant de demander un nouveau code.", seconds, type="resend_too_soon"
        )


async def on_sms_resend(wf: PaymentWorkflow) -> SmsResendOutcome:
    s = wf._amanpay.settings
    sms = _sms_state(wf)
    sms.resends += 1
    sms.last_sent = workflow.now()
    attempts = await workflow.execute_activity(
        amanpay.paydirect_resend,
        sms.auth_ref,
        start_to_close_timeout=CALL_TIMEOUT,
        schedule_to_close_timeout=CALL_GIVE_UP,
        retry_policy=CALL_RETRY,
    )
    sms.otp_expires = workflow.now() + timedelta(seconds=s.otp_ttl_seconds)
    sms.attempts_left, sms.dead = attempts, False
    _sms_action(wf, s)
    return SmsResendOutcome(_iso(sms.otp_expires), max(s.max_resends - sms.resends, 0))
