"""CMI Fatourati: paid, paid twice, refused then paid, expired with its reminder, paid late, cancelled."""

from __future__ import annotations

from datetime import timedelta

from portnet.statuses import Channel
from tests.histories.manifest import RecordedPath
from tests.histories.recording import USER_NAME, PaymentHandle, Recording
from tests.histories.scenarios.common import Scenario, expect
from tests.histories.world import PORTNET_INVOICE, PORTNET_OTHER, Plan
from workflows.payment import PaymentWorkflow
from workflows.types import FatouratiResult, PaymentView

INVOICES = [PORTNET_INVOICE, PORTNET_OTHER]


def callback(view: PaymentView, callback_id: int, transaction: str, decision: str = "0") -> FatouratiResult:
    """CMI Fatourati's callback as web/channels/fatourati.py turns it into the Update's argument."""
    return FatouratiResult(
        callback_id=callback_id,
        transaction_number=transaction,
        decision_code=decision,
        amount=view.amount,
        channel="cih",
        transaction_date="2026-11-29T11:15:03+00:00",
    )


async def _start(
    r: Recording, path: RecordedPath, plan: Plan | None = None
) -> tuple[PaymentHandle, PaymentView]:
    inp = r.payment_input(path, Channel.CMI_FATOURATI, INVOICES)
    handle, view = await r.start_payment(inp, INVOICES, plan)
    if plan is None or not plan.refuse_token:
        expect(view.status == "awaiting_payer", f"Fatourati attempt not awaiting the payer: {view}")
        expect(
            view.next_action is not None and view.next_action.type == "fatourati_reference", "no reference"
        )
    return handle, view


async def paid(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path)
    await r.skip(timedelta(minutes=10))
    decision = await handle.execute_update(
        PaymentWorkflow.fatourati_result, callback(view, 201, "FTR2611290001")
    )
    expect(decision.outcome == "accepted", f"payment not accepted: {decision}")
    return handle


async def paid_twice(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path, Plan([i.id for i in INVOICES], held={"settle_payment"}))
    await r.skip(timedelta(minutes=25))
    first = await handle.execute_update(
        PaymentWorkflow.fatourati_result, callback(view, 202, "FTR2611290002")
    )
    expect(first.outcome == "accepted", f"payment not accepted: {first}")
    await r.world.reached("settle_payment", view.id)
    second = await handle.execute_update(
        PaymentWorkflow.fatourati_result, callback(view, 203, "FTR2611290003")
    )
    expect(second.outcome == "unapplied", f"a second payment must be unapplied: {second}")
    r.world.let_go("settle_payment", view.id)
    return handle


async def refused_then_paid(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path)
    await r.skip(timedelta(minutes=5))
    refusal = await handle.execute_update(
        PaymentWorkflow.fatourati_result, callback(view, 204, "FTR2611290004", decision="1")
    )
    expect(refusal.outcome == "refused", f"refusal not recorded: {refusal}")
    await r.skip(timedelta(minutes=40))
    payment = await handle.execute_update(
        PaymentWorkflow.fatourati_result, callback(view, 205, "FTR2611290005")
    )
    expect(payment.outcome == "accepted", f"payment not accepted: {payment}")
    return handle


async def expired(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, _ = await _start(r, path)
    return handle


async def paid_late(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path, Plan([i.id for i in INVOICES], held={"cancel_token"}))
    await r.skip(timedelta(hours=3, seconds=1))
    await r.world.reached("cancel_token", view.id)
    late = await handle.execute_update(PaymentWorkflow.fatourati_result, callback(view, 206, "FTR2611290006"))
    expect(late.outcome == "unapplied", f"a payment after the deadline must be unapplied: {late}")
    r.world.let_go("cancel_token", view.id)
    return handle


async def cancelled_by_payer(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, _ = await _start(r, path)
    await r.skip(timedelta(minutes=15))
    await handle.signal(PaymentWorkflow.cancel, f"Annulé par {USER_NAME}")
    return handle


async def reference_unavailable(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path, Plan([i.id for i in INVOICES], refuse_token=True))
    expect(view.status == "failed" and view.error_code == "partner_unavailable", f"token not refused: {view}")
    return handle


SCENARIOS: dict[str, Scenario] = {
    "payment_fatourati_paid": paid,
    "payment_fatourati_paid_twice": paid_twice,
    "payment_fatourati_refused_then_paid": refused_then_paid,
    "payment_fatourati_expired": expired,
    "payment_fatourati_paid_late": paid_late,
    "payment_fatourati_cancelled_by_payer": cancelled_by_payer,
    "payment_fatourati_reference_unavailable": reference_unavailable,
    # Recorded again once the closing rule was in (the first ones predate it).
    "payment_fatourati_paid_closing_rule": paid,
    "payment_fatourati_paid_late_closing_rule": paid_late,
}
