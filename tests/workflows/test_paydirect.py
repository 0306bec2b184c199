"""Amanpay PayDirect on the time-skipping server: the SMS code's 10 minutes, a new code, the step's
15 minutes.

The bank is a fake registered under the real activity names (it finds every code wrong); the ledger
is real. Updates against a live bank, and what never reaches history, are in
tests/integration/test_paydirect_updates.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlmodel import Session
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from portnet.models import Invoice
from portnet.protocols import amanpay as amanpay_protocol
from portnet.settings import get_settings
from tests.support.fakes import PartnerFakes
from tests.support.ledger import invoice_status as status_of
from tests.support.workers import amanpay_input, wait_status, worker_with_fakes
from workflows.payment import PaymentWorkflow
from workflows.types import SealedCode


async def test_sms_code_expires_after_ten_minutes_then_a_new_one_is_possible(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    fakes = PartnerFakes()
    inp = amanpay_input(invoice)
    code = SealedCode(amanpay_protocol.seal_otp(get_settings().secret_key, inp.payment_id, "123456"))
    async with worker_with_fakes(time_env.client, fakes.amanpay()) as queue:
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
    fakes = PartnerFakes()
    inp = amanpay_input(invoice)
    async with worker_with_fakes(time_env.client, fakes.amanpay()) as queue:
        handle = await time_env.client.start_workflow(
            PaymentWorkflow.run, inp, id=f"payment-{inp.payment_id}", task_queue=queue
        )
        await wait_status(handle, "awaiting_payer")
        assert status_of(db, invoice) == "in_payment"
        result = await handle.result()
    assert result.status == "expired" and "code SMS" in (result.error or "")
    assert status_of(db, invoice) == "unpaid"
