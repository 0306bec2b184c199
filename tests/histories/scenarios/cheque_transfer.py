"""Cheque and bank transfer: confirmed (with a subscription renewal), rejected, unconfirmed, cancelled."""

from __future__ import annotations

from datetime import timedelta

from portnet.statuses import Channel
from tests.histories.manifest import RecordedPath
from tests.histories.recording import PaymentHandle, Recording
from tests.histories.scenarios.common import Scenario, expect
from tests.histories.world import PORTNET_INVOICE, SUBSCRIPTION, LedgerInvoice, Plan
from workflows.payment import PaymentWorkflow
from workflows.types import FinanceDecision, FinanceVerdict

CHEQUE = {"cheque_number": "2718281", "bank": "CIH Bank"}
TRANSFER = {"transfer_reference": "VIR-2026-11-0042", "transfer_date": "2026-11-27"}
FINANCE_USER = "finance"


async def _start(
    r: Recording, path: RecordedPath, channel: Channel, invoice: LedgerInvoice, declaration: dict[str, str]
) -> PaymentHandle:
    inp = r.payment_input(path, channel, [invoice], declaration=declaration)
    handle, view = await r.start_payment(inp, [invoice])
    expect(view.status == "awaiting_confirmation", f"declaration not awaiting finance: {view}")
    return handle


async def _decide(handle: PaymentHandle, confirm: bool, reason: str) -> None:
    """As web/finance.decide signals it."""
    await handle.signal(PaymentWorkflow.finance_decision, FinanceDecision(confirm, FINANCE_USER, reason))


async def _decide_by_update(handle: PaymentHandle, confirm: bool, reason: str) -> FinanceVerdict:
    """As web/finance.decide sends it under the closing rule: an Update answered accepted or refused."""
    return await handle.execute_update(
        PaymentWorkflow.finance_decide, FinanceDecision(confirm, FINANCE_USER, reason)
    )


async def cheque_confirmed_by_update(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle = await _start(r, path, Channel.CHEQUE, PORTNET_INVOICE, CHEQUE)
    await r.skip(timedelta(days=2))
    verdict = await _decide_by_update(handle, True, "Relevé CIH du 01/12, chèque encaissé")
    expect(verdict.accepted, f"confirmation refused: {verdict}")
    return handle


async def cheque_confirmation_during_release(r: Recording, path: RecordedPath) -> PaymentHandle:
    """No decision in 30 days; finance confirms while the invoices are being released: refused."""
    inp = r.payment_input(path, Channel.CHEQUE, [PORTNET_INVOICE], declaration=CHEQUE)
    plan = Plan([PORTNET_INVOICE.id], held={"release_invoices"})
    handle, view = await r.start_payment(inp, [PORTNET_INVOICE], plan)
    await r.skip(timedelta(days=30, seconds=1))
    await r.world.reached("release_invoices", view.id)
    verdict = await _decide_by_update(handle, True, "Chèque encaissé (relevé tardif)")
    expect(not verdict.accepted, f"a confirmation during the release was accepted: {verdict}")
    r.world.let_go("release_invoices", view.id)
    return handle


async def cheque_confirmed_subscription_renewed(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle = await _start(r, path, Channel.CHEQUE, SUBSCRIPTION, CHEQUE)
    await r.skip(timedelta(days=3))
    await _decide(handle, True, "Relevé CIH du 02/12, chèque encaissé")
    return handle


async def transfer_confirmed(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle = await _start(r, path, Channel.BANK_TRANSFER, PORTNET_INVOICE, TRANSFER)
    await r.skip(timedelta(days=1))
    await _decide(handle, True, "Virement reçu")
    return handle


async def cheque_rejected(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle = await _start(r, path, Channel.CHEQUE, PORTNET_INVOICE, CHEQUE)
    await r.skip(timedelta(days=5))
    await _decide(handle, False, "Chèque sans provision")
    return handle


async def transfer_unconfirmed_expired(r: Recording, path: RecordedPath) -> PaymentHandle:
    return await _start(r, path, Channel.BANK_TRANSFER, PORTNET_INVOICE, TRANSFER)


async def cheque_cancelled_by_finance(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle = await _start(r, path, Channel.CHEQUE, PORTNET_INVOICE, CHEQUE)
    await r.skip(timedelta(days=2))
    # web/finance.py blocking the invoice: the live attempt is cancelled first.
    await handle.signal(PaymentWorkflow.cancel, f"Bloquée par la finance ({FINANCE_USER}) : litige client")
    return handle


SCENARIOS: dict[str, Scenario] = {
    "payment_cheque_confirmed_subscription_renewed": cheque_confirmed_subscription_renewed,
    "payment_transfer_confirmed": transfer_confirmed,
    "payment_cheque_rejected": cheque_rejected,
    "payment_transfer_unconfirmed_expired": transfer_unconfirmed_expired,
    "payment_cheque_cancelled_by_finance": cheque_cancelled_by_finance,
    "payment_cheque_confirmed_by_update": cheque_confirmed_by_update,
    "payment_cheque_confirmation_during_release": cheque_confirmation_during_release,
}
