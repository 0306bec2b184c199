"""PayDirect: the right code, wrong codes, a dead code, an expired code, resends, refusal, cancel.

Codes go in sealed, as web/channels/paydirect.submit_sms_code sends them; a submission the Update's validator
refuses (dead or expired code) leaves nothing in history, as in production.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowUpdateFailedError

from portnet.statuses import Channel
from tests.histories.manifest import RecordedPath
from tests.histories.recording import USER_EMAIL, USER_NAME, PaymentHandle, Recording
from tests.histories.scenarios.common import PathNotTaken, Scenario, expect
from tests.histories.world import PORTNET_INVOICE, Plan
from workflows.payment import PaymentWorkflow
from workflows.types import AmanpayPayer, PayerInfo, PaymentView, SmsCodeOutcome

INVOICES = [PORTNET_INVOICE]
PHONE = "+212600000001"
# Reading the SMS and typing the code.
TYPING = timedelta(seconds=40)
# Past the bank's minimum interval between two codes (AmanpaySettings.resend_interval_seconds).
RESEND_WAIT = timedelta(seconds=61)


async def _start(
    r: Recording, path: RecordedPath, plan: Plan | None = None
) -> tuple[PaymentHandle, PaymentView]:
    inp = r.payment_input(
        path,
        Channel.AMANPAY_PAYDIRECT,
        INVOICES,
        amanpay=AmanpayPayer(
            contract_number="PD1002457", cin="BE123456", mandataire="Yassine Alaoui", phone=PHONE
        ),
        payer=PayerInfo(name="Yassine Alaoui", email=USER_EMAIL, phone=PHONE),
    )
    handle, view = await r.start_payment(inp, INVOICES, plan)
    return handle, view


async def _submit(r: Recording, handle: PaymentHandle, view: PaymentView, code: str) -> SmsCodeOutcome:
    return await handle.execute_update(PaymentWorkflow.sms_code, r.sealed(view.id, code))


def _wrong(r: Recording, view: PaymentView) -> str:
    right = r.world.sms_code(view.id)
    return "111111" if right != "111111" else "222222"


async def _refused(r: Recording, handle: PaymentHandle, view: PaymentView, code: str) -> None:
    """A submission the validator must refuse before it reaches history."""
    try:
        outcome = await _submit(r, handle, view, code)
    except WorkflowUpdateFailedError:
        return
    raise PathNotTaken(f"the validator let a code through: {outcome}")


async def _right(r: Recording, handle: PaymentHandle, view: PaymentView) -> None:
    outcome = await _submit(r, handle, view, r.world.sms_code(view.id))
    expect(outcome.result == "authorized", f"the right code was not authorized: {outcome}")


async def _three_wrong(r: Recording, handle: PaymentHandle, view: PaymentView) -> None:
    results = []
    for _ in range(3):
        await r.skip(TYPING)
        results.append((await _submit(r, handle, view, _wrong(r, view))).result)
    expect(results == ["wrong", "wrong", "dead"], f"three wrong codes: {results}")
    await _refused(r, handle, view, r.world.sms_code(view.id))  # a dead code: refused, no trace


async def right_code(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path)
    expect(view.next_action is not None and view.next_action.type == "sms_code", f"no SMS step: {view}")
    await r.skip(TYPING)
    await _right(r, handle, view)
    return handle


async def wrong_codes_expired(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path)
    await _three_wrong(r, handle, view)
    return handle


async def resend_then_right_code(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path)
    await r.skip(TYPING)
    first = await _submit(r, handle, view, _wrong(r, view))
    expect(first.result == "wrong" and first.attempts_left == 2, f"wrong code: {first}")
    await r.skip(RESEND_WAIT)
    resent = await handle.execute_update(PaymentWorkflow.sms_resend)
    expect(resent.resends_left == 2, f"resend: {resent}")
    await r.skip(TYPING)
    await _right(r, handle, view)
    return handle


async def dead_code_resent(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path)
    await _three_wrong(r, handle, view)
    resent = await handle.execute_update(PaymentWorkflow.sms_resend)
    expect(resent.resends_left == 2, f"resend: {resent}")
    await r.skip(TYPING)
    await _right(r, handle, view)
    return handle


async def code_expired_resent(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path)
    await r.skip(timedelta(minutes=10, seconds=1))
    await _refused(r, handle, view, r.world.sms_code(view.id))  # an expired code: refused, no trace
    resent = await handle.execute_update(PaymentWorkflow.sms_resend)
    expect(resent.resends_left == 2, f"resend: {resent}")
    await r.skip(TYPING)
    await _right(r, handle, view)
    return handle


async def contract_refused(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path, Plan([i.id for i in INVOICES], refuse_contract=True))
    expect(view.status == "failed" and view.error_code == "cin_mismatch", f"contract not refused: {view}")
    return handle


async def cancelled_by_payer(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, _ = await _start(r, path)
    await r.skip(TYPING)
    await handle.signal(PaymentWorkflow.cancel, f"Annulé par {USER_NAME}")
    return handle


SCENARIOS: dict[str, Scenario] = {
    "payment_paydirect_right_code": right_code,
    "payment_paydirect_wrong_codes_expired": wrong_codes_expired,
    "payment_paydirect_resend_then_right_code": resend_then_right_code,
    "payment_paydirect_dead_code_resent": dead_code_resent,
    "payment_paydirect_code_expired_resent": code_expired_resent,
    "payment_paydirect_contract_refused": contract_refused,
    "payment_paydirect_cancelled_by_payer": cancelled_by_payer,
    # Recorded again once the closing rule was in (the first ones predate it).
    "payment_paydirect_right_code_closing_rule": right_code,
    "payment_paydirect_cancelled_closing_rule": cancelled_by_payer,
}
