"""CMI card: the payer's browser posts our signed form to CMI's hosted page; CMI's signed callback says.

Declines are recorded and the payer may try again until the deadline (CMI's page timeout and a
margin). Only the workflow decides, without a race, whether an approval still counts: it answers
CMI ``ACTION=POSTAUTH`` (capture) while the attempt waits for its payer, ``APPROVED`` (acknowledged,
not captured) otherwise.

Answering POSTAUTH is not capturing: the answer may never reach CMI (our worker slow past CMI's
10 s callback timeout, a redeploy), and CMI then holds an authorisation only. So the attempt settles
only once CMI says it holds the money (``confirm_capture``): CMI's order status (ORDERHISTORY), and
if it shows an authorisation only, our capture through CMI's API (PostAuth). CMI captures as soon as
it has read our answer, so the status is looked at as soon as we answered (the payer waits for it), and
again while it shows an authorisation only, by one activity (``watch_card_capture``); the PostAuth
comes only once CMI's whole grace to read our answer has passed, so it never races CMI's own capture
(workflows/policies.py). If CMI holds neither
(declined, voided, unknown), the attempt does not settle: it ends ``failed`` and gives the invoices
back. It does not go back to waiting for the payer: CMI's order already carries this transaction (it
takes no other card once one was approved), and a payer who was shown an approval must not be asked,
on the same page, to pay again; a new attempt starts clean and finance sees why in the message log.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import cmi_card
    from activities.cmi_card import (
        AUTHORISED,
        CAPTURED,
        CaptureWatchInput,
        CardOrderInput,
        CardOrderStatus,
        CmiFormInput,
    )
    from activities.types import Decline, Reservation
    from portnet.statuses import PaymentStatus
    from workflows.attempt import Approval, Attempt
    from workflows.channels.base import Failed, Outcome, Paid, PayerAction, PaymentChannel, Released
    from workflows.policies import (
        CAPTURE_FIRST_LOOK,
        CAPTURE_LATER_LOOKS,
        CAPTURE_LOOKS,
        CAPTURE_PROMPT_LOOKS,
        CAPTURE_WATCH_SPAN,
        CARD_FORM_TIMEOUT,
        PARTNER_RETRY,
        PARTNER_TIMEOUT,
        PROMPT_CALLBACK,
    )
    from workflows.types import CmiDecision, CmiResult


# The attempts started before the capture was confirmed settle on the POSTAUTH answer alone.
CAPTURE_CONFIRMED = "cmi-capture-confirmed"
# The attempts started before it look at CMI's order once, after the whole grace (CAPTURE_FIRST_LOOK).
CAPTURE_EARLY_LOOK = "cmi-capture-early-look"
# The attempts that reached their looks before it take CAPTURE_LOOKS (first at 150 ms); the others
# CAPTURE_PROMPT_LOOKS (first at 50 ms) when CMI's callback reached them promptly (PROMPT_CALLBACK).
CAPTURE_PROMPT_LOOK = "cmi-capture-prompt-look"
# The attempts that reached their looks before it look with a timer and an activity per look; the
# others first through one activity that watches CMI's order for CAPTURE_WATCH_SPAN after our answer
# (watch_card_capture), then at CAPTURE_LATER_LOOKS.
CAPTURE_WATCH = "cmi-capture-watch"
NOT_CAPTURED = "Paiement non confirmé par CMI : aucune autorisation à capturer"


class CmiCard(PaymentChannel):
    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt)
        # CMI disowned the approval we answered POSTAUTH to: a replay of it is no longer captured.
        self.capture_refused = False
        # The approval's callback reached the workflow within PROMPT_CALLBACK of reaching the portal.
        self.approved_promptly = False
        # When the workflow last answered the approval POSTAUTH (the start of that workflow task, in
        # workflow time): CMI's grace starts about then (``watch_capture``).
        self.answered_at: datetime | None = None

    async def start(self, reservation: Reservation) -> PayerAction | Failed:
        inp = self.attempt.inp
        form = await workflow.execute_local_activity(
            cmi_card.build_card_form,
            CmiFormInput(inp.payment_id, reservation.amount, inp.payer, reservation.client_name, inp.lang),
            start_to_close_timeout=CARD_FORM_TIMEOUT,
            summary="Formulaire de paiement CMI",
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
        if self.attempt.patched(CAPTURE_CONFIRMED):
            return await self.confirm_capture(attempt.approval)
        return Paid(attempt.approval)

    async def confirm_capture(self, approval: Approval) -> Outcome:
        """Settles only on CMI's word: captured (by our POSTAUTH answer, or by our PostAuth now)."""
        inp = CardOrderInput(self.attempt.inp.payment_id, approval.transaction_id)
        if self.attempt.patched(CAPTURE_WATCH):
            status = await self.watch_capture(inp)
        elif self.attempt.patched(CAPTURE_EARLY_LOOK):
            status = await self.look_for_capture(inp)
        else:
            await workflow.sleep(CAPTURE_FIRST_LOOK)  # CMI reads our answer, then captures
            status = await self.check_capture(inp)
        if status.state == AUTHORISED:
            # Our POSTAUTH answer never reached CMI: capture through its API.
            capture = await workflow.execute_activity(
                cmi_card.capture_card_payment,
                inp,
                start_to_close_timeout=PARTNER_TIMEOUT,
                retry_policy=PARTNER_RETRY,
                summary="Capture CMI",
            )
            if capture.captured:
                return Paid(approval)
            # Refused: our answer may have reached CMI meanwhile (captured), or CMI voided it.
            status = await self.check_capture(inp)
        if status.state == CAPTURED:
            return Paid(approval)
        workflow.logger.warning("CMI holds no capture for %s (%s): not settled", inp.payment_id, status.state)
        self.capture_refused = True
        # CMI holds no money for it: the approval no longer binds the attempt, which may be released
        # (the closing rule would otherwise settle an accepted approval).
        self.attempt.disown()
        return Released(PaymentStatus.FAILED, NOT_CAPTURED)

    async def watch_capture(self, inp: CardOrderInput) -> CardOrderStatus:
        """CMI's order status, watched by one activity in the moments after our answer
        (CAPTURE_WATCH_SPAN), then looked at again at CAPTURE_LATER_LOOKS after it while it shows an
        authorisation only: captured, or any other state, ends the looking at once; an authorisation
        still alone at the last look, once CMI's whole grace has passed, is ours to capture."""
        answered = self.answered_at or workflow.now()
        watch = await workflow.execute_activity(
            cmi_card.watch_card_capture,
            CaptureWatchInput(inp.payment_id, inp.trans_id, (answered + CAPTURE_WATCH_SPAN).isoformat()),
            start_to_close_timeout=PARTNER_TIMEOUT,
            retry_policy=PARTNER_RETRY,
            summary="Vérification de la capture CMI",
        )
        status: CardOrderStatus = watch
        # ``answered`` is when the workflow task that answered began; the answer left as it completed,
        # which is when it scheduled the watch (the server's time, from history): CMI's grace counts
        # from the later of the two.
        left = max(answered, datetime.fromisoformat(watch.scheduled_at))
        for after in CAPTURE_LATER_LOOKS:
            if status.state != AUTHORISED:
                break
            # A redelivered approval answered POSTAUTH again meanwhile: its answer counts.
            since = max(left, self.answered_at or left)
            # Workflow time, from history: the same waits on replay.
            wait = since + after - workflow.now()
            if wait > timedelta(0):
                await workflow.sleep(wait)
            elif after != CAPTURE_LATER_LOOKS[-1]:
                continue  # the watch (slow, or retried) has just looked; the last look is never skipped
            status = await self.check_capture(inp)
        return status

    async def look_for_capture(self, inp: CardOrderInput) -> CardOrderStatus:
        """CMI's order status, looked at soon after our answer and again while it shows an authorisation
        only, until CMI's whole grace has passed (CAPTURE_PROMPT_LOOKS or CAPTURE_LOOKS): captured, or
        any other state, ends the looking at once; an authorisation still alone after the last look is
        ours to capture."""
        status: CardOrderStatus | None = None
        prompt = self.attempt.patched(CAPTURE_PROMPT_LOOK) and self.approved_promptly
        for delay in CAPTURE_PROMPT_LOOKS if prompt else CAPTURE_LOOKS:
            await workflow.sleep(delay)
            status = await self.check_capture(inp)
            if status.state != AUTHORISED:
                break
        assert status is not None
        return status

    async def check_capture(self, inp: CardOrderInput) -> CardOrderStatus:
        return await workflow.execute_activity(
            cmi_card.check_card_capture,
            inp,
            start_to_close_timeout=PARTNER_TIMEOUT,
            retry_policy=PARTNER_RETRY,
            summary="Vérification de la capture CMI",
        )

    async def confirm(self, approval: Approval) -> Outcome:
        """An operator's cancel after CMI's approval settles only on CMI's word, as ``collect`` does."""
        if self.attempt.patched(CAPTURE_CONFIRMED):
            return await self.confirm_capture(approval)
        return Paid(approval)

    def cmi_result(self, result: CmiResult) -> CmiDecision:
        """CMI's verified callback. Capture only while the attempt still waits for its payer."""
        attempt, view = self.attempt, self.attempt.view
        if view is None or not attempt.awaits_payer() or attempt.closing:
            approval = attempt.approval
            replayed = approval is not None and result.approved and result.trans_id == approval.transaction_id
            if replayed and not self.capture_refused:
                # CMI may capture on this answer: its grace starts again (CAPTURE_LATER_LOOKS).
                self.answered_at = workflow.now()
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
        self.answered_at = workflow.now()
        self.approved_promptly = reached_promptly(result.received_at, workflow.now())
        return CmiDecision("ACTION=POSTAUTH", "approved")


def reached_promptly(received_at: str | None, now: datetime) -> bool:
    """The callback's Update reached the workflow (``now``: workflow time, from history, so the same
    answer on replay) within PROMPT_CALLBACK of the portal receiving it (``received_at``, the
    portal's clock). Anything else takes the looks as before: no stamp (an older portal), one that
    does not parse or has no time zone, or one after ``now`` (the two clocks disagree)."""
    if received_at is None:
        return False
    try:
        received = datetime.fromisoformat(received_at)
    except ValueError:
        return False
    if received.tzinfo is None:
        return False
    return timedelta(0) <= now - received <= PROMPT_CALLBACK
