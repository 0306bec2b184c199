"""The one closing rule per attempt, raced deterministically on the time-skipping server.

Each race is set up with a controlled activity (it waits on a gate the test opens) and a probe that
waits until the workflow has taken a message in: a cancel or a deadline while a release, a bank
verification or a settlement runs; messages queued behind a partner call; an operator's cancel while
an activity runs. The ledger is real; partners and mail are fakes under the real activity names.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, select
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment

from activities import cheque_transfer, ledger
from activities.paydirect import PayDirectVerdict, PayDirectVerifyInput
from activities.types import ReleaseInput, Reservation, ReserveInput, SettleInput, Settlement
from portnet.models import Invoice, Payment, UnappliedPayment
from portnet.protocols import amanpay as amanpay_protocol
from portnet.settings import get_settings
from tests.support.fakes import CmiBank, PartnerFakes
from tests.support.gates import Gate, activity_spans, admitted, taken_in
from tests.support.ledger import invoice_status as status_of
from tests.support.workers import (
    amanpay_input,
    eventually,
    offline_input,
    payment_input,
    start,
    wait_status,
    worker_with_fakes,
)
from workflows.payment import PaymentWorkflow
from workflows.types import AmanpaySettings, CmiResult, FinanceDecision, PaymentInput, SealedCode

SIGNALED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
CANCEL_REQUESTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED
TIMER_FIRED = EventType.EVENT_TYPE_TIMER_FIRED


def gated_release(gate: Gate) -> Callable[..., object]:
    @activity.defn(name="release_invoices")
    async def release_invoices(inp: ReleaseInput) -> None:
        await gate.passing()
        await asyncio.to_thread(ledger.release_invoices, inp)

    return release_invoices


def gated_settle(gate: Gate) -> Callable[..., object]:
    @activity.defn(name="settle_payment")
    async def settle_payment(inp: SettleInput) -> Settlement:
        await gate.passing()
        return await asyncio.to_thread(ledger.settle_payment, inp)

    return settle_payment


def bank(gate: Gate, verdicts: list[PayDirectVerdict]) -> list[Callable[..., object]]:
    """Amanpay and PayDirect fakes whose bank answers ``verdicts`` in turn, behind ``gate``."""
    answers = iter(verdicts)

    @activity.defn(name="paydirect_verify")
    async def paydirect_verify(inp: PayDirectVerifyInput) -> PayDirectVerdict:
        await gate.passing()
        return next(answers)

    fakes = [f for f in PartnerFakes().amanpay() if getattr(f, "__name__", "") != "paydirect_verify"]
    return [*fakes, paydirect_verify]


async def closed(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Waits until every run of activity ``name`` has its closing event in history."""

    async def probe() -> bool:
        spans = await activity_spans(handle, name)
        return bool(spans) and all(end < 1 << 62 for _, end in spans)

    await eventually(probe)


def sealed(inp: PaymentInput, digits: str = "123456") -> SealedCode:
    return SealedCode(amanpay_protocol.seal_otp(get_settings().secret_key, inp.payment_id, digits))


AUTHORIZED = PayDirectVerdict("authorized", 3, "PD-TX-1", "A1B2C3")


# --- item 1: capture after release ------------------------------------------------------------------


async def test_card_approval_while_the_release_runs_is_not_captured(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = payment_input(invoice.company_id, [invoice.id or 0])
    release = Gate()
    async with worker_with_fakes(time_env.client, [gated_release(release)]) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        await handle.signal(PaymentWorkflow.cancel, "Annulé par le payeur")
        await release.reached()
        decision = await handle.execute_update(
            PaymentWorkflow.cmi_result,
            CmiResult(
                callback_id=1, approved=True, proc_return_code="00", trans_id="T-LATE", amount="120.00"
            ),
        )
        assert decision.answer == "APPROVED"  # acknowledged, never captured
        release.open()
        result = await handle.result()
    assert result.status == "cancelled" and result.transaction_id is None
    assert status_of(db, invoice) == "unpaid"


async def test_paydirect_cancel_during_a_verification_lets_the_bank_answer(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """The bank authorizes the code it was given before the cancel: the money is taken, so it settles."""
    invoice = make_invoice()
    inp = amanpay_input(invoice)
    verify = Gate()
    async with worker_with_fakes(time_env.client, bank(verify, [AUTHORIZED])) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        code = await handle.start_update(
            PaymentWorkflow.sms_code, sealed(inp), wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        await verify.reached()
        await handle.signal(PaymentWorkflow.cancel, "Annulé par le payeur")
        await taken_in(handle, SIGNALED)
        assert status_of(db, invoice) == "in_payment"  # nothing released while the bank decides
        verify.open()
        assert (await code.result()).result == "authorized"
        result = await handle.result()
    assert result.status == "succeeded" and result.transaction_id == "PD-TX-1"
    assert status_of(db, invoice) in ("payment_confirmed", "paid")


async def test_paydirect_deadline_during_a_verification_refuses_the_queued_code(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = amanpay_input(invoice)
    inp.amanpay_settings = AmanpaySettings(step_timeout_seconds=120)
    verify = Gate()
    wrong = PayDirectVerdict("wrong", 2)
    async with worker_with_fakes(time_env.client, bank(verify, [wrong, wrong])) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        await time_env.sleep(timedelta(seconds=115))
        first = await handle.start_update(
            PaymentWorkflow.sms_code, sealed(inp), wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        await verify.reached()
        second = await handle.start_update(
            PaymentWorkflow.sms_code, sealed(inp, "654321"), wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        # The step's deadline, 5 s away, passes while the bank checks: the test server skips no time
        # while an activity is in flight, so its clock runs at the real pace until the timer fires.
        await taken_in(handle, TIMER_FIRED)
        verify.open()
        assert (await first.result()).result == "wrong"
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await second.result()
        assert isinstance(refused.value.cause, ApplicationError) and refused.value.cause.type == "wrong_state"
        result = await handle.result()
    assert result.status == "expired"
    assert verify.calls == 1  # the queued code never reached the bank once the attempt was closing
    assert status_of(db, invoice) == "unpaid"


async def test_queued_codes_are_verified_one_at_a_time(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = amanpay_input(invoice)
    verify = Gate()
    verdicts = [PayDirectVerdict("wrong", 2), PayDirectVerdict("wrong", 1), PayDirectVerdict("dead", 0)]
    async with worker_with_fakes(time_env.client, bank(verify, verdicts)) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        accepted = WorkflowUpdateStage.ACCEPTED
        codes = [await handle.start_update(PaymentWorkflow.sms_code, sealed(inp), wait_for_stage=accepted)]
        await verify.reached()
        for digits in ("123456", "654321"):  # a double click, and one more, while the bank checks the first
            codes.append(
                await handle.start_update(
                    PaymentWorkflow.sms_code, sealed(inp, digits), wait_for_stage=accepted
                )
            )
        verify.open()
        results = [await c.result() for c in codes]
        assert [r.result for r in results] == ["wrong", "wrong", "dead"]
        spans = await activity_spans(handle, "paydirect_verify")
        await handle.signal(PaymentWorkflow.cancel, "fin du test")
        assert (await handle.result()).status == "cancelled"
    assert len(spans) == 3
    for (_, closed), (scheduled, _) in zip(spans, spans[1:], strict=False):
        assert scheduled > closed, f"two verifications overlapped: {spans}"
    assert verify.most_in_flight == 1
    assert status_of(db, invoice) == "unpaid"


async def test_finance_confirmation_during_the_release_is_refused(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = offline_input(invoice.company_id, [invoice.id or 0], channel="cheque")
    release = Gate()
    fakes = [*PartnerFakes().fatourati_and_mail(), gated_release(release)]
    async with worker_with_fakes(time_env.client, fakes) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_confirmation")
        await time_env.sleep(timedelta(days=30, seconds=1))  # no decision in 30 days: the release starts
        await release.reached()
        verdict = await handle.execute_update(
            PaymentWorkflow.finance_decide, FinanceDecision(True, "finance", "chèque encaissé")
        )
        assert not verdict.accepted and "n'attend plus" in verdict.reason
        release.open()
        result = await handle.result()
    assert result.status == "expired"
    assert status_of(db, invoice) == "unpaid"


async def test_finance_confirmation_is_answered_and_a_later_cancel_changes_nothing(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = offline_input(invoice.company_id, [invoice.id or 0], channel="cheque")
    log = Gate()

    @activity.defn(name="log_finance_decision")
    async def log_finance_decision(entry: cheque_transfer.DecisionLogInput) -> None:
        await log.passing()
        await asyncio.to_thread(cheque_transfer.log_finance_decision, entry)

    fakes = [*PartnerFakes().fatourati_and_mail(), log_finance_decision]
    async with worker_with_fakes(time_env.client, fakes) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_confirmation")
        verdict = await handle.execute_update(
            PaymentWorkflow.finance_decide, FinanceDecision(True, "finance", "chèque encaissé")
        )
        assert verdict.accepted
        await log.reached()
        await handle.signal(PaymentWorkflow.cancel, "Facture bloquée par la finance")
        await taken_in(handle, SIGNALED)
        again = await handle.execute_update(
            PaymentWorkflow.finance_decide, FinanceDecision(False, "finance2", "erreur")
        )
        assert not again.accepted and "déjà été confirmé" in again.reason
        log.open()
        result = await handle.result()
    assert result.status == "succeeded"
    assert status_of(db, invoice) in ("payment_confirmed", "paid")


# --- item 4: an operator's cancel while an activity runs -------------------------------------------


async def test_operator_cancel_while_an_activity_runs_releases_the_invoices(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = offline_input(invoice.company_id, [invoice.id or 0], channel="cheque")
    declaration = Gate()

    @activity.defn(name="record_declaration")
    async def record_declaration(payment_id: str, user_name: str, declared: dict[str, str]) -> None:
        await declaration.passing()
        await asyncio.to_thread(cheque_transfer.record_declaration, payment_id, user_name, declared)

    release = Gate()
    fakes = [*PartnerFakes().fatourati_and_mail(), record_declaration, gated_release(release)]
    async with worker_with_fakes(time_env.client, fakes) as queue:
        handle = await start(time_env.client, inp, queue)
        await declaration.reached()
        assert status_of(db, invoice) == "in_payment"
        await handle.cancel()
        await release.reached()  # the workflow gives the invoices back while the activity still runs
        declaration.open()
        await closed(handle, "record_declaration")  # (the test server's clock waits for it)
        release.open()
        with pytest.raises(WorkflowFailureError) as ended:
            await handle.result()
    assert isinstance(ended.value.cause, CancelledError)
    assert status_of(db, invoice) == "unpaid"
    payment = db.get(Payment, inp.payment_id)
    assert payment is not None
    db.refresh(payment)
    assert payment.status == "cancelled"


async def test_operator_cancel_while_the_invoices_are_being_held_gives_them_back(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = payment_input(invoice.company_id, [invoice.id or 0])
    reserve, reserved = Gate(), asyncio.Event()

    @activity.defn(name="reserve_invoices")
    async def reserve_invoices(request: ReserveInput) -> Reservation:
        await reserve.passing()
        try:
            return await asyncio.to_thread(ledger.reserve_invoices, request)
        finally:
            reserved.set()

    async with worker_with_fakes(time_env.client, [reserve_invoices]) as queue:
        # Started as the API starts it: update-with-start, the API waiting on ``ready``.
        operation = WithStartWorkflowOperation(
            PaymentWorkflow.run,
            inp,
            id=f"payment-{inp.payment_id}",
            task_queue=queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        ready = asyncio.ensure_future(
            time_env.client.execute_update_with_start_workflow(
                PaymentWorkflow.ready, start_workflow_operation=operation
            )
        )
        await reserve.reached()
        handle = await operation.workflow_handle()
        await handle.cancel()
        await taken_in(handle, CANCEL_REQUESTED)
        reserve.open()
        assert (await ready).status == "cancelled"  # the API gets its answer, not a hung request
        with pytest.raises(WorkflowFailureError) as ended:
            await handle.result()
        await asyncio.wait_for(reserved.wait(), 20)  # the hold is written, whatever the workflow did
    assert isinstance(ended.value.cause, CancelledError)
    assert status_of(db, invoice) == "unpaid"


async def test_operator_cancel_during_the_settlement_settles_and_confirms(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """The approval was accepted: the cancel neither abandons the settlement nor skips the e-mail."""
    invoice = make_invoice()
    inp = payment_input(invoice.company_id, [invoice.id or 0])
    settle = Gate()
    fakes = PartnerFakes()
    async with worker_with_fakes(
        time_env.client, [*fakes.silent_emitters(), *CmiBank().activities(), gated_settle(settle)]
    ) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        decision = await handle.execute_update(
            PaymentWorkflow.cmi_result,
            CmiResult(callback_id=1, approved=True, proc_return_code="00", trans_id="T-OK", amount="120.00"),
        )
        assert decision.answer == "ACTION=POSTAUTH"
        await settle.reached()
        await handle.cancel()
        await taken_in(handle, CANCEL_REQUESTED)
        settle.open()
        result = await handle.result()
    assert result.status == "succeeded" and result.transaction_id == "T-OK"
    assert [kind for kind, _ in fakes.mails] == ["payment_confirmed"]
    assert status_of(db, invoice) in ("payment_confirmed", "paid")


async def test_operator_cancel_during_a_verification_lets_the_bank_answer(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = amanpay_input(invoice)
    verify = Gate()
    async with worker_with_fakes(time_env.client, bank(verify, [AUTHORIZED])) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        code = await handle.start_update(
            PaymentWorkflow.sms_code, sealed(inp), wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        await verify.reached()
        await handle.cancel()
        await taken_in(handle, CANCEL_REQUESTED)
        assert status_of(db, invoice) == "in_payment"
        verify.open()
        assert (await code.result()).result == "authorized"
        result = await handle.result()
    assert result.status == "succeeded" and result.transaction_id == "PD-TX-1"
    assert status_of(db, invoice) in ("payment_confirmed", "paid")


def test_a_settlement_after_the_release_commits_nothing_and_keeps_the_money(
    make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """An abandoned settlement that runs after the invoices were given back: unapplied money."""
    invoice = make_invoice()
    inp = payment_input(invoice.company_id, [invoice.id or 0])
    reservation = ledger.reserve_invoices(
        ReserveInput(
            payment_id=inp.payment_id,
            workflow_id=f"payment-{inp.payment_id}",
            channel="cmi_card",
            company_id=inp.company_id,
            user_id=None,
            user_name="sataa",
            invoice_ids=inp.invoice_ids,
            payer_email=inp.payer.email,
        )
    )
    assert reservation.ok
    ledger.release_invoices(ReleaseInput(inp.payment_id, "cmi_card", "sataa", "cancelled", "Annulé", []))
    settle = SettleInput(
        payment_id=inp.payment_id,
        channel="cmi_card",
        user_name="sataa",
        transaction_id="T-" + uuid.uuid4().hex[:8],
        auth_code="123456",
        masked_pan="400000******0010",
        paid_at="2026-11-30T10:00:00+00:00",
        payer=inp.payer,
        declines=[],
    )
    first, again = ledger.settle_payment(settle), ledger.settle_payment(settle)
    assert not first.applied and first.receipt_number == again.receipt_number
    db.expire_all()
    payment = db.get(Payment, inp.payment_id)
    assert payment is not None and payment.status == "cancelled" and payment.paid_at is None
    assert status_of(db, invoice) == "unpaid"
    kept = db.exec(select(UnappliedPayment).where(UnappliedPayment.payment_id == inp.payment_id)).all()
    assert len(kept) == 1 and kept[0].amount == payment.amount and kept[0].partner == "cmi"


async def test_cancel_order_that_never_succeeds_still_releases(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = amanpay_input(invoice, channel="amanpay_code")

    @activity.defn(name="cancel_order")
    async def cancel_order(payment_id: str) -> str:
        raise ApplicationError("Amanpay unreachable for a day", non_retryable=True)

    fakes = [f for f in PartnerFakes().amanpay() if getattr(f, "__name__", "") != "cancel_order"]
    async with worker_with_fakes(time_env.client, [*fakes, cancel_order]) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        await handle.signal(PaymentWorkflow.cancel, "Annulé par le payeur")
        result = await handle.result()
    assert result.status == "cancelled"
    assert status_of(db, invoice) == "unpaid"


async def test_two_resends_accepted_together_send_one_code(
    dev_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """Both requests admitted while no worker polls, in whichever order the server hands them over: one
    reaches the bank, the other is refused (busy, or over the limit), never sent twice."""
    invoice = make_invoice()
    inp = amanpay_input(invoice)
    inp.amanpay_settings = AmanpaySettings(resend_interval_seconds=0, max_resends=1)
    resends = Gate(held=0)

    @activity.defn(name="paydirect_resend")
    async def paydirect_resend(auth_ref: str) -> int:
        await resends.passing()
        return 3

    fakes = [f for f in PartnerFakes().amanpay() if getattr(f, "__name__", "") != "paydirect_resend"]
    fakes.append(paydirect_resend)
    client = dev_env.client
    async with worker_with_fakes(client, fakes, max_cached_workflows=0) as queue:
        handle = await start(client, inp, queue)
        await wait_status(handle, "awaiting_payer")
    requests = [
        asyncio.ensure_future(
            handle.start_update(
                PaymentWorkflow.sms_resend, id=f"resend-{n}", wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
        )
        for n in (1, 2)
    ]
    for n in (1, 2):
        await admitted(client, handle.id, f"resend-{n}")
    async with worker_with_fakes(client, fakes, task_queue=queue, max_cached_workflows=0):
        outcomes = await asyncio.gather(*[(await r).result() for r in requests], return_exceptions=True)
        sent = [o for o in outcomes if not isinstance(o, BaseException)]
        refused = [o for o in outcomes if isinstance(o, WorkflowUpdateFailedError)]
        # On failure, say why each request was refused (its cause: busy, resend_limit, wrong_state...).
        why = [(o, getattr(o, "cause", None)) for o in outcomes]
        assert len(sent) == 1 and len(refused) == 1, why
        assert isinstance(refused[0].cause, ApplicationError)
        assert refused[0].cause.type in ("busy", "resend_limit")
        await handle.signal(PaymentWorkflow.cancel, "fin du test")
        assert (await handle.result()).status == "cancelled"
    assert resends.calls == 1
    assert status_of(db, invoice) == "unpaid"


async def test_a_code_sent_while_a_new_code_is_requested_waits_for_it(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """The bank is asked one thing at a time: a code typed while the new code is being sent is checked
    once the bank has sent it, never beside it."""
    invoice = make_invoice()
    inp = amanpay_input(invoice)
    inp.amanpay_settings = AmanpaySettings(resend_interval_seconds=0)
    resend, verify = Gate(), Gate(held=0)

    @activity.defn(name="paydirect_resend")
    async def paydirect_resend(auth_ref: str) -> int:
        await resend.passing()
        return 3

    fakes = [
        f
        for f in bank(verify, [PayDirectVerdict("wrong", 2)])
        if getattr(f, "__name__", "") != "paydirect_resend"
    ]
    async with worker_with_fakes(time_env.client, [*fakes, paydirect_resend]) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        accepted = WorkflowUpdateStage.ACCEPTED
        new_code = await handle.start_update(PaymentWorkflow.sms_resend, wait_for_stage=accepted)
        await resend.reached()
        code = await handle.start_update(PaymentWorkflow.sms_code, sealed(inp), wait_for_stage=accepted)
        assert await activity_spans(handle, "paydirect_verify") == []  # not beside the resend
        resend.open()
        assert (await new_code.result()).resends_left == 2
        assert (await code.result()).result == "wrong"
        (resent,), (verified,) = (
            await activity_spans(handle, "paydirect_resend"),
            await activity_spans(handle, "paydirect_verify"),
        )
        assert verified[0] > resent[1]
        await handle.signal(PaymentWorkflow.cancel, "fin du test")
        assert (await handle.result()).status == "cancelled"
    assert status_of(db, invoice) == "unpaid"
