"""CMI Fatourati on the time-skipping server: the 3-hour reference, its reminder, payments at the edges.

The partner and mail activities are replaced by recording fakes (same activity names), so these
tests are about the workflow's time rules; the HTTP side is in tests/integration/test_fatourati.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlmodel import Session
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from portnet.models import Invoice
from tests.support.fakes import PartnerFakes
from tests.support.ledger import invoice_status as status_of
from tests.support.workers import fatourati_input, payment_input, start, wait_status, worker_with_fakes
from workflows.payment import PaymentWorkflow
from workflows.types import FatouratiResult

HOURS_3 = 3 * 3600


def paid(txn: str, amount: str, code: str = "0") -> FatouratiResult:
    return FatouratiResult(
        callback_id=1, transaction_number=txn, decision_code=code, amount=amount, channel="cih"
    )


async def test_unpaid_reference_gets_a_reminder_then_expires_and_is_cancelled_at_cmi(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    a, b = make_invoice(), make_invoice()
    inp = fatourati_input(a.company_id, [a.id or 0, b.id or 0])
    fakes = PartnerFakes()
    async with worker_with_fakes(time_env.client, fakes.fatourati_and_mail()) as queue:
        handle = await start(time_env.client, inp, queue)
        view = await wait_status(handle, "awaiting_payer")
        assert view.amount == "240.00" and view.next_action is not None
        assert view.next_action.type == "fatourati_reference"
        assert view.next_action.fields is not None and len(view.next_action.fields["reference"]) == 13
        started = await time_env.get_current_time()
        assert status_of(db, a) == status_of(db, b) == "in_payment"
        result = await handle.result()
    assert result.status == "expired"
    assert fakes.cancelled == [inp.payment_id]
    assert status_of(db, a) == status_of(db, b) == "unpaid"
    kinds = [k for k, _ in fakes.mails]
    assert kinds == ["fatourati_reference", "fatourati_reminder"]
    reminder_at = fakes.mails[1][1]
    assert timedelta(hours=2, minutes=29) <= reminder_at - started <= timedelta(hours=2, minutes=31)


async def test_payment_at_2h59m59s_settles_and_no_reminder_after_payment(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    a, b = make_invoice(), make_invoice()
    inp = fatourati_input(a.company_id, [a.id or 0, b.id or 0])
    fakes = PartnerFakes()
    async with worker_with_fakes(time_env.client, fakes.fatourati_and_mail()) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        await time_env.sleep(timedelta(hours=2, minutes=59, seconds=59))
        decision = await handle.execute_update(PaymentWorkflow.fatourati_result, paid("FTR1", "240.00"))
        assert decision.outcome == "accepted" and decision.receipt_number == f"REC-{inp.payment_id}"
        again = await handle.execute_update(PaymentWorkflow.fatourati_result, paid("FTR1", "240.00"))
        assert again.outcome == "duplicate" and again.receipt_number == decision.receipt_number
        other = await handle.execute_update(PaymentWorkflow.fatourati_result, paid("FTR2", "240.00"))
        assert other.outcome == "unapplied"
        result = await handle.result()
    assert result.status == "succeeded" and result.transaction_id == "FTR1"
    assert status_of(db, a) == status_of(db, b) == "paid"
    assert fakes.cancelled == []


async def test_early_payment_means_no_reminder(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    a = make_invoice()
    inp = fatourati_input(a.company_id, [a.id or 0])
    fakes = PartnerFakes()
    async with worker_with_fakes(time_env.client, fakes.fatourati_and_mail()) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        await time_env.sleep(timedelta(minutes=10))
        decision = await handle.execute_update(PaymentWorkflow.fatourati_result, paid("FTR3", "120.00"))
        assert decision.outcome == "accepted"
        await handle.result()
    assert "fatourati_reminder" not in [k for k, _ in fakes.mails]


async def test_refused_decision_keeps_invoices_held_until_the_deadline(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    a = make_invoice()
    inp = fatourati_input(a.company_id, [a.id or 0])
    async with worker_with_fakes(time_env.client, PartnerFakes().fatourati_and_mail()) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        decision = await handle.execute_update(
            PaymentWorkflow.fatourati_result, paid("FTR4", "120.00", code="1")
        )
        assert decision.outcome == "refused"
        await time_env.sleep(timedelta(hours=2))
        view = await handle.query(PaymentWorkflow.state)
        assert view is not None and view.status == "awaiting_payer" and view.declines == 1
        assert status_of(db, a) == "in_payment"
        wrong = await handle.execute_update(PaymentWorkflow.fatourati_result, paid("FTR5", "99.00"))
        assert wrong.outcome == "amount_mismatch"
        assert status_of(db, a) == "in_payment"
        result = await handle.result()
    assert result.status == "expired"  # the reference expired; the refusal is in the message log
    assert status_of(db, a) == "unpaid"


async def test_payment_after_the_deadline_in_the_same_breath_is_unapplied(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    a = make_invoice()
    inp = fatourati_input(a.company_id, [a.id or 0])
    async with worker_with_fakes(time_env.client, PartnerFakes().fatourati_and_mail()) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        await time_env.sleep(timedelta(hours=3, seconds=1))
        try:
            decision = await handle.execute_update(PaymentWorkflow.fatourati_result, paid("FTR6", "120.00"))
        except (WorkflowUpdateFailedError, RPCError):
            decision = (
                None  # the workflow is already closed: the web layer keeps the money (integration test)
            )
        assert decision is None or decision.outcome == "unapplied"
        result = await handle.result()
    assert result.status == "expired"
    assert status_of(db, a) == "unpaid"


async def test_a_fatourati_payment_for_an_attempt_of_another_channel_is_kept_unapplied(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """Only the Fatourati channel settles on CMI Fatourati's callback: elsewhere the money is finance's."""
    a = make_invoice()
    inp = payment_input(a.company_id, [a.id or 0])  # a card attempt, waiting for its payer
    async with worker_with_fakes(time_env.client, PartnerFakes().fatourati_and_mail()) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        decision = await handle.execute_update(PaymentWorkflow.fatourati_result, paid("FTR7", "120.00"))
        assert decision.outcome == "unapplied"
        view = await handle.query(PaymentWorkflow.state)
        assert view is not None and view.status == "awaiting_payer" and view.transaction_id is None
        await handle.signal(PaymentWorkflow.cancel, "fin du test")
        assert (await handle.result()).status == "cancelled"
    assert status_of(db, a) == "unpaid"
