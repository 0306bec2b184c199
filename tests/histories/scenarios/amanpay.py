"""Amanpay cash code and Amanty: paid, expired, paid late, refused for balance then paid or cancelled."""

from __future__ import annotations

from datetime import timedelta

from portnet.statuses import Channel
from tests.histories.manifest import RecordedPath
from tests.histories.recording import USER_EMAIL, PaymentHandle, Recording
from tests.histories.scenarios.common import Scenario, expect
from tests.histories.world import PORTNET_INVOICE, Plan
from workflows.payment import PaymentWorkflow
from workflows.types import AmanpayNotice, AmanpayPayer, PayerInfo, PaymentView

INVOICES = [PORTNET_INVOICE]


def notice(
    view: PaymentView,
    callback_id: int,
    status: str,
    channel: str,
    transaction: str = "",
    reason: str = "",
    event_id: str = "",
) -> AmanpayNotice:
    """Amanpay's notification as web/channels/amanpay.py turns it into the Update's argument."""
    return AmanpayNotice(
        callback_id=callback_id,
        event_id=event_id or f"{view.id}-{status}",
        status=status,
        amount=view.amount,
        transaction_id=transaction,
        channel=channel,
        reason=reason,
    )


async def _code(
    r: Recording, path: RecordedPath, plan: Plan | None = None
) -> tuple[PaymentHandle, PaymentView]:
    inp = r.payment_input(
        path,
        Channel.AMANPAY_CODE,
        INVOICES,
        amanpay=AmanpayPayer(last_name="Alaoui", first_name="Yassine"),
        payer=PayerInfo(name="Yassine Alaoui", email=USER_EMAIL),
    )
    handle, view = await r.start_payment(inp, INVOICES, plan)
    expect(view.next_action is not None and view.next_action.type == "payment_code", f"no cash code: {view}")
    return handle, view


async def _amanty(r: Recording, path: RecordedPath) -> tuple[PaymentHandle, PaymentView]:
    inp = r.payment_input(path, Channel.AMANPAY_AMANTY, INVOICES, amanpay=AmanpayPayer())
    handle, view = await r.start_payment(inp, INVOICES)
    expect(view.next_action is not None and view.next_action.type == "redirect", f"no Amanty page: {view}")
    return handle, view


async def cash_code_paid(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _code(r, path)
    await r.skip(timedelta(hours=5))
    decision = await handle.execute_update(
        PaymentWorkflow.amanpay_result, notice(view, 301, "paid", "tashilat", "TSH3F9A1C07B2")
    )
    expect(decision.accepted, f"cash payment not accepted: {decision}")
    return handle


async def cash_code_expired(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, _ = await _code(r, path)
    return handle


async def cash_code_paid_late(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _code(r, path, Plan([i.id for i in INVOICES], held={"cancel_order"}))
    await r.skip(timedelta(hours=72, seconds=1))
    await r.world.reached("cancel_order", view.id)
    decision = await handle.execute_update(
        PaymentWorkflow.amanpay_result, notice(view, 302, "paid", "tashilat", "TSH77C01D9E44")
    )
    expect(not decision.accepted, f"a payment on an expired code must be refused (unapplied): {decision}")
    r.world.let_go("cancel_order", view.id)
    return handle


async def amanty_paid(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _amanty(r, path)
    await r.skip(timedelta(minutes=3))
    decision = await handle.execute_update(
        PaymentWorkflow.amanpay_result, notice(view, 303, "paid", "amanty", "AMT5B20E61A9C")
    )
    expect(decision.accepted, f"Amanty payment not accepted: {decision}")
    return handle


async def _refused(r: Recording, handle: PaymentHandle, view: PaymentView, callback_id: int) -> None:
    decision = await handle.execute_update(
        PaymentWorkflow.amanpay_result,
        notice(
            view,
            callback_id,
            "refused",
            "amanty",
            reason="insufficient_balance",
            event_id=f"{view.id}-refused-0-4be2a1",
        ),
    )
    expect(decision.accepted, f"refusal not recorded: {decision}")


async def amanty_refused_then_paid(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _amanty(r, path)
    await r.skip(timedelta(minutes=2))
    await _refused(r, handle, view, 304)
    await r.skip(timedelta(minutes=4))
    decision = await handle.execute_update(
        PaymentWorkflow.amanpay_result, notice(view, 305, "paid", "amanty", "AMT0D3C4F8812")
    )
    expect(decision.accepted, f"Amanty payment not accepted: {decision}")
    return handle


async def amanty_refused_then_cancelled(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _amanty(r, path)
    await r.skip(timedelta(minutes=2))
    await _refused(r, handle, view, 306)
    await r.skip(timedelta(minutes=1))
    decision = await handle.execute_update(
        PaymentWorkflow.amanpay_result, notice(view, 307, "cancelled", "amanty")
    )
    expect(decision.accepted, f"cancel on Amanty not taken: {decision}")
    return handle


async def amanty_expired(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, _ = await _amanty(r, path)
    return handle


SCENARIOS: dict[str, Scenario] = {
    "payment_cash_code_paid": cash_code_paid,
    "payment_cash_code_expired": cash_code_expired,
    "payment_cash_code_paid_late": cash_code_paid_late,
    "payment_amanty_paid": amanty_paid,
    "payment_amanty_refused_then_paid": amanty_refused_then_paid,
    "payment_amanty_refused_then_cancelled": amanty_refused_then_cancelled,
    "payment_amanty_expired": amanty_expired,
    # Recorded again once the closing rule was in (the first ones predate it).
    "payment_cash_code_paid_closing_rule": cash_code_paid,
    "payment_cash_code_paid_late_closing_rule": cash_code_paid_late,
}
