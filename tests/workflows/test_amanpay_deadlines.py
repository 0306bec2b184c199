"""Amanpay deadlines on the time-skipping server: cash code expiry, SMS code expiry, the SMS step
timeout, and a cash payment notified after expiry (an unapplied payment for finance).

The partners are replaced by fakes registered under the real activity names; the ledger is real.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from portnet import amanpay_protocol
from portnet.models import Invoice, UnappliedPayment
from portnet.settings import get_settings
from tests.helpers import wait_status
from web.app import create_app
from worker import ACTIVITIES, WORKFLOWS
from workflows.payment import PaymentWorkflow
from workflows.types import (
    AmanpayOrder,
    AmanpayOrderInput,
    AmanpayPayer,
    AmanpaySettings,
    CodeEmailInput,
    PayDirectStart,
    PayDirectStartInput,
    PayDirectVerdict,
    PayDirectVerifyInput,
    PayerInfo,
    PaymentInput,
    SealedCode,
)

CANCELLED: list[str] = []
MAILED: list[CodeEmailInput] = []


@activity.defn(name="create_order")
async def fake_create_order(inp: AmanpayOrderInput) -> AmanpayOrder:
    if inp.method == "code":
        return AmanpayOrder(ok=True, code="18 0857 637-947", expires_at="2026-11-30T00:00:00+00:00")
    return AmanpayOrder(ok=True, redirect_url="http://amanty.invalid/pay")


@activity.defn(name="cancel_order")
async def fake_cancel_order(payment_id: str) -> str:
    CANCELLED.append(payment_id)
    return "cancelled"


@activity.defn(name="send_code_email")
async def fake_send_code_email(inp: CodeEmailInput) -> None:
    MAILED.append(inp)


@activity.defn(name="paydirect_start")
async def fake_paydirect_start(inp: PayDirectStartInput) -> PayDirectStart:
    return PayDirectStart(ok=True, auth_ref="PDA-TEST", attempts_left=3)


@activity.defn(name="paydirect_resend")
async def fake_paydirect_resend(auth_ref: str) -> int:
    return 3


@activity.defn(name="paydirect_verify")
async def fake_paydirect_verify(inp: PayDirectVerifyInput) -> PayDirectVerdict:
    return PayDirectVerdict(result="wrong", attempts_left=2)


FAKES: dict[str, Callable[..., Any]] = {
    "create_order": fake_create_order,
    "cancel_order": fake_cancel_order,
    "send_code_email": fake_send_code_email,
    "paydirect_start": fake_paydirect_start,
    "paydirect_resend": fake_paydirect_resend,
    "paydirect_verify": fake_paydirect_verify,
}


@asynccontextmanager
async def worker(env: WorkflowEnvironment) -> AsyncIterator[str]:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    activities: list[Callable[..., Any]] = [FAKES.get(getattr(a, "__name__", ""), a) for a in ACTIVITIES]
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=WORKFLOWS,
            activities=activities,
            activity_executor=executor,
        ):
            yield queue


def amanpay_input(invoice: Invoice, channel: str) -> PaymentInput:
    return PaymentInput(
        payment_id="PN" + uuid.uuid4().hex[:12].upper(),
        channel=channel,
        company_id=invoice.company_id,
        user_id=None,
        user_name="sataa",
        invoice_ids=[invoice.id or 0],
        payer=PayerInfo(name="Yassine Alaoui", email="payeur@sataa.ma", phone="+212600000001"),
        emitter_ack_deadline_seconds=3600,
        amanpay=AmanpayPayer(
            last_name="Alaoui",
            first_name="Yassine",
            contract_number="PD1002457",
            cin="BE123456",
            mandataire="Yassine Alaoui",
            phone="+212600000001",
        ),
        amanpay_settings=AmanpaySettings(),
    )


def status_of(db: Session, invoice: Invoice) -> str:
    db.expire_all()
    fresh = db.get(Invoice, invoice.id)
    assert fresh is not None
    return fresh.status


async def test_cash_code_expires_after_72_hours_and_is_cancelled_at_amanpay(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = amanpay_input(invoice, "amanpay_code")
    async with worker(time_env) as queue:
        handle = await time_env.client.start_workflow(
            PaymentWorkflow.run, inp, id=f"payment-{inp.payment_id}", task_queue=queue
        )
        view = await wait_status(handle, "awaiting_payer")
        assert view.next_action is not None and view.next_action.type == "payment_code"
        assert status_of(db, invoice) == "in_payment"
        await time_env.sleep(timedelta(hours=71))
        assert (await handle.query(PaymentWorkflow.state)).status == "awaiting_payer"  # type: ignore[union-attr]
        result = await handle.result()
    assert result.status == "expired" and "expiré" in (result.error or "")
    assert inp.payment_id in CANCELLED
    assert [m.code for m in MAILED if m.payment_id == inp.payment_id] == ["18 0857 637-947"]
    assert status_of(db, invoice) == "unpaid"


async def test_cash_payment_notified_after_expiry_is_unapplied_for_finance(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = amanpay_input(invoice, "amanpay_code")
    settings = get_settings()
    async with worker(time_env) as queue:
        handle = await time_env.client.start_workflow(
            PaymentWorkflow.run, inp, id=f"payment-{inp.payment_id}", task_queue=queue
        )
        await wait_status(handle, "awaiting_payer")
        assert (await handle.result()).status == "expired"  # 72 h skipped
        app = create_app(settings, temporal_client=time_env.client)
        body = amanpay_protocol.dumps(
            {
                "merchant_id": settings.amanpay_merchant_id,
                "order_id": inp.payment_id,
                "amount": "120.00",
                "status": "paid",
                "event_id": f"{inp.payment_id}-paid",
                "transaction_id": "TSHLATE01",
                "paid_at": "2026-11-30T10:00:00+00:00",
            }
        )
        signature = amanpay_protocol.sign(
            settings.amanpay_secret_key, amanpay_protocol.Message.NOTIFICATION, body
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://portal"
        ) as client:
            for _ in range(2):  # Amanpay retries: still one unapplied payment
                reply = await client.post(
                    "/api/v1/callbacks/amanpay", content=body, headers={"X-Amanpay-Signature": signature}
                )
                assert reply.status_code == 200
    rows = db.exec(select(UnappliedPayment).where(UnappliedPayment.payment_id == inp.payment_id)).all()
    assert (
        len(rows) == 1
        and rows[0].transaction_number == "amanpay:TSHLATE01"
        and str(rows[0].amount) == "120.00"
    )
    assert status_of(db, invoice) == "unpaid"


async def test_sms_code_expires_after_ten_minutes_then_a_new_one_is_possible(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = amanpay_input(invoice, "amanpay_paydirect")
    code = SealedCode(amanpay_protocol.seal_otp(get_settings().secret_key, inp.payment_id, "123456"))
    async with worker(time_env) as queue:
        handle = await time_env.client.start_workflow(
            PaymentWorkflow.run, inp, id=f"payment-{inp.payment_id}", task_queue=queue
        )
        view = await wait_status(handle, "awaiting_payer")
        assert view.next_action is not None and view.next_action.type == "sms_code"
        first_expiry = view.next_action.expires_at
        await time_env.sleep(timedelta(seconds=601))
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(PaymentWorkflow.sms_code, code)
        assert isinstance(info.value.cause, ApplicationError) and info.value.cause.type == "code_expired"
        resent = await handle.execute_update(PaymentWorkflow.sms_resend)
        assert resent.resends_left == 2 and resent.expires_at != first_expiry
        outcome = await handle.execute_update(PaymentWorkflow.sms_code, code)
        assert outcome.result == "wrong" and outcome.attempts_left == 2
        await handle.signal(PaymentWorkflow.cancel, "test")
        assert (await handle.result()).status == "cancelled"
    assert status_of(db, invoice) == "unpaid"


async def test_sms_step_times_out_after_fifteen_minutes_and_releases(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = amanpay_input(invoice, "amanpay_paydirect")
    async with worker(time_env) as queue:
        handle = await time_env.client.start_workflow(
            PaymentWorkflow.run, inp, id=f"payment-{inp.payment_id}", task_queue=queue
        )
        await wait_status(handle, "awaiting_payer")
        assert status_of(db, invoice) == "in_payment"
        result = await handle.result()
    assert result.status == "expired" and "code SMS" in (result.error or "")
    assert status_of(db, invoice) == "unpaid"


async def test_amanty_page_abandoned_expires(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = amanpay_input(invoice, "amanpay_amanty")
    async with worker(time_env) as queue:
        handle = await time_env.client.start_workflow(
            PaymentWorkflow.run, inp, id=f"payment-{inp.payment_id}", task_queue=queue
        )
        view = await wait_status(handle, "awaiting_payer")
        assert view.next_action is not None and view.next_action.type == "redirect"
        result = await handle.result()
    assert result.status == "expired"
    assert status_of(db, invoice) == "unpaid"
