"""A worker killed while the payer is on CMI's page: the next worker finishes the payment.

CMI's callback waited for a worker longer than CMI waits for our answer (10 s), so our POSTAUTH never
reached CMI: the next worker finds an authorisation only at CMI and captures it before settling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from activities.cmi_card import AUTHORISED, CAPTURED
from portnet.models import Invoice
from tests.support.fakes import CmiBank
from tests.support.workers import payment_input, running_worker, start, wait_status, worker_with_fakes
from workflows.payment import PaymentWorkflow
from workflows.types import CmiResult


async def test_payment_survives_a_worker_restart(
    dev_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = payment_input(invoice.company_id, [invoice.id or 0])
    async with running_worker(dev_env.client) as queue:
        handle = await start(dev_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
    # No worker polls the queue now. CMI's callback arrives meanwhile and waits for one.
    approval = asyncio.create_task(
        handle.execute_update(
            PaymentWorkflow.cmi_result,
            CmiResult(
                callback_id=7,
                approved=True,
                proc_return_code="00",
                trans_id="RESTART1",
                amount="120.00",
                auth_code="111111",
                masked_pan="400000******0010",
            ),
        )
    )
    await asyncio.sleep(1.0)
    assert not approval.done()
    bank = CmiBank(state=AUTHORISED)
    async with worker_with_fakes(dev_env.client, bank.activities(), task_queue=queue):
        decision = await asyncio.wait_for(approval, timeout=30)
        assert decision.answer == "ACTION=POSTAUTH"
        view = await wait_status(handle, "succeeded", timeout=30)
        assert view.transaction_id == "RESTART1"
        assert bank.captures == ["RESTART1"] and bank.state == CAPTURED
        await handle.cancel()  # the confirmation e-mail has no SMTP server in this test
    db.expire_all()
    fresh = db.get(Invoice, invoice.id)
    assert fresh is not None and fresh.status == "paid"
