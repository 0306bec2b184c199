"""Amanpay cash code and Amanty on the time-skipping server: the 72-hour code, a payment notified
after it expired (unapplied money for finance), an Amanty page abandoned.

The partner activities are replaced by fakes registered under the real activity names; the ledger is
real. The HTTP side is in tests/integration/test_amanpay.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from portnet.models import Invoice, UnappliedPayment
from portnet.protocols import amanpay as amanpay_protocol
from portnet.settings import get_settings
from tests.support.fakes import CASH_CODE, PartnerFakes
from tests.support.ledger import invoice_status as status_of
from tests.support.workers import amanpay_input, wait_status, worker_with_fakes
from web.app import create_app
from workflows.payment import PaymentWorkflow


async def test_cash_code_expires_after_72_hours_and_is_cancelled_at_amanpay(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    fakes = PartnerFakes()
    inp = amanpay_input(invoice, "amanpay_code")
    async with worker_with_fakes(time_env.client, fakes.amanpay()) as queue:
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
    assert fakes.cancelled == [inp.payment_id]
    assert [m.code for m in fakes.code_mails] == [CASH_CODE]
    assert status_of(db, invoice) == "unpaid"


async def test_cash_payment_notified_after_expiry_is_unapplied_for_finance(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    fakes = PartnerFakes()
    inp = amanpay_input(invoice, "amanpay_code")
    settings = get_settings()
    async with worker_with_fakes(time_env.client, fakes.amanpay()) as queue:
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


async def test_amanty_page_abandoned_expires(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    fakes = PartnerFakes()
    inp = amanpay_input(invoice, "amanpay_amanty")
    async with worker_with_fakes(time_env.client, fakes.amanpay()) as queue:
        handle = await time_env.client.start_workflow(
            PaymentWorkflow.run, inp, id=f"payment-{inp.payment_id}", task_queue=queue
        )
        view = await wait_status(handle, "awaiting_payer")
        assert view.next_action is not None and view.next_action.type == "redirect"
        result = await handle.result()
    assert result.status == "expired"
    assert status_of(db, invoice) == "unpaid"
