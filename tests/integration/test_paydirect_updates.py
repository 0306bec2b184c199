"""The PayDirect SMS code Updates on the dev server: validator, resend limits, a worker restart while
the workflow waits for the code, and no OTP in logs, history payloads or search attributes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Callable

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from portnet.models import Invoice
from portnet.protocols import amanpay as amanpay_protocol
from portnet.settings import get_settings
from portnet.temporal_codec import payload_codec
from tests.support.api import CONTRACT, Stack, last_sms_code
from tests.support.payloads import history_payload_texts
from tests.support.workers import running_worker, wait_status
from workflows.payment import PaymentWorkflow
from workflows.types import AmanpayPayer, AmanpaySettings, PayerInfo, PaymentInput, PaymentView, SealedCode


def paydirect_input(invoice: Invoice, resend_interval: int = 60) -> PaymentInput:
    return PaymentInput(
        payment_id="PN" + uuid.uuid4().hex[:12].upper(),
        channel="amanpay_paydirect",
        company_id=invoice.company_id,
        user_id=None,
        user_name="sataa",
        invoice_ids=[invoice.id or 0],
        payer=PayerInfo(name=CONTRACT["mandataire"], email=CONTRACT["email"], phone=CONTRACT["phone"]),
        emitter_ack_deadline_seconds=3600,
        amanpay=AmanpayPayer(
            contract_number=CONTRACT["contract_number"],
            cin=CONTRACT["cin"],
            mandataire=CONTRACT["mandataire"],
            phone=CONTRACT["phone"],
        ),
        amanpay_settings=AmanpaySettings(resend_interval_seconds=resend_interval),
    )


def sealed(payment_id: str, code: str) -> SealedCode:
    return SealedCode(amanpay_protocol.seal_otp(get_settings().secret_key, payment_id, code))


async def start(stack: Stack, inp: PaymentInput, queue: str) -> WorkflowHandle[PaymentWorkflow, PaymentView]:
    return await stack.env.client.start_workflow(
        PaymentWorkflow.run, inp, id=f"payment-{inp.payment_id}", task_queue=queue
    )


async def rejected(call: asyncio.Future[object] | object) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call  # type: ignore[misc]
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def accepted_updates(handle: WorkflowHandle[PaymentWorkflow, PaymentView]) -> int:
    history = await handle.fetch_history()
    return sum(
        1 for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    )


async def test_validator_rejects_bad_format_and_wrong_state_before_history(
    stack: Stack, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    inp = paydirect_input(invoice)
    handle = await start(stack, inp, stack.task_queue)
    await wait_status(handle, "awaiting_payer")
    before = await accepted_updates(handle)
    bad = await rejected(handle.execute_update(PaymentWorkflow.sms_code, SealedCode("123456")))
    assert bad.type == "bad_format"
    assert await accepted_updates(handle) == before  # a rejected Update leaves no event
    too_soon = await rejected(handle.execute_update(PaymentWorkflow.sms_resend))
    assert too_soon.type == "resend_too_soon"
    await handle.signal(PaymentWorkflow.cancel, "test")
    await wait_status(handle, "cancelled")
    # The attempt is over and closed: Temporal itself refuses (the API answers 409).
    with pytest.raises(RPCError):
        await handle.execute_update(PaymentWorkflow.sms_code, sealed(inp.payment_id, "123456"))


async def test_resend_is_limited_to_three_per_attempt(
    stack: Stack, make_invoice: Callable[..., Invoice], anonymous: httpx.AsyncClient
) -> None:
    invoice = make_invoice()
    inp = paydirect_input(invoice, resend_interval=1)
    handle = await start(stack, inp, stack.task_queue)
    await wait_status(handle, "awaiting_payer")
    first = await last_sms_code(anonymous, CONTRACT["phone"], inp.payment_id)
    for number in range(3):
        await asyncio.sleep(1.1)
        outcome = await handle.execute_update(PaymentWorkflow.sms_resend)
        assert outcome.resends_left == 2 - number
    await asyncio.sleep(1.1)
    limit = await rejected(handle.execute_update(PaymentWorkflow.sms_resend))
    assert limit.type == "resend_limit"
    # Only the newest code works: the first one was replaced by the bank.
    latest = await last_sms_code(anonymous, CONTRACT["phone"], inp.payment_id)
    if latest != first:
        verdict = await handle.execute_update(PaymentWorkflow.sms_code, sealed(inp.payment_id, first))
        assert verdict.result == "wrong" and verdict.attempts_left == 2
    await handle.signal(PaymentWorkflow.cancel, "test")
    await wait_status(handle, "cancelled")


async def test_worker_restart_while_waiting_for_the_sms_code(
    stack: Stack, make_invoice: Callable[..., Invoice], anonymous: httpx.AsyncClient
) -> None:
    invoice = make_invoice()
    inp = paydirect_input(invoice)
    async with running_worker(stack.env.client) as queue:
        handle = await start(stack, inp, queue)
        await wait_status(handle, "awaiting_payer")
    code = await last_sms_code(anonymous, CONTRACT["phone"], inp.payment_id)
    # No worker now: the payer types the code; the Update waits for a worker.
    submit = asyncio.create_task(
        handle.execute_update(PaymentWorkflow.sms_code, sealed(inp.payment_id, code))
    )
    await asyncio.sleep(1.0)
    assert not submit.done()
    async with running_worker(stack.env.client, task_queue=queue):
        outcome = await asyncio.wait_for(submit, timeout=30)
        assert outcome.result == "authorized"
        view = await wait_status(handle, "succeeded", timeout=30)
        assert view.transaction_id and view.transaction_id.startswith("BP")
        with contextlib.suppress(RPCError):
            await handle.cancel()  # stop waiting for the emitter's acknowledgement


def _contains_code(text: str, code: str) -> bool:
    return re.search(rf"(?<![0-9A-Za-z]){code}(?![0-9A-Za-z])", text) is not None


async def test_no_otp_in_logs_history_or_search_attributes(
    stack: Stack,
    make_invoice: Callable[..., Invoice],
    anonymous: httpx.AsyncClient,
    sataa: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    invoice = make_invoice()
    reply = await sataa.post(
        "/api/v1/payments",
        json={"invoice_ids": [invoice.id], "channel": "amanpay_paydirect", "payer": CONTRACT},
    )
    payment = reply.json()
    code = await last_sms_code(anonymous, CONTRACT["phone"], payment["id"])
    wrong = f"{(int(code) + 3) % 1_000_000:06d}"
    assert (
        await sataa.post(f"/api/v1/payments/{payment['id']}/sms-code", json={"code": wrong})
    ).status_code == 422
    assert (
        await sataa.post(f"/api/v1/payments/{payment['id']}/sms-code", json={"code": code})
    ).status_code == 200
    handle = stack.env.client.get_workflow_handle(payment["workflow_id"])
    await wait_status(handle, "succeeded")  # type: ignore[arg-type]

    # Opened with the payload key, as finance reads the history in the Web UI: the code stays sealed.
    history = (await handle.fetch_history()).to_json()
    payloads = await history_payload_texts(history, payload_codec(get_settings()))
    assert any("gAAAAA" in p for p in payloads), "the Update carried the sealed code"
    for secret in (code, wrong):
        leaks = [p for p in payloads if _contains_code(p, secret)]
        assert leaks == [], leaks
    description = await handle.describe()
    attributes = " ".join(str(pair.value) for pair in description.typed_search_attributes)
    assert not _contains_code(attributes, code)
    # Settled: the validator's state check refuses a code (or Temporal, once the workflow closed).
    try:
        await handle.execute_update(PaymentWorkflow.sms_code, sealed(payment["id"], code))
        raise AssertionError("a code was taken after the payment settled")
    except WorkflowUpdateFailedError as err:
        assert isinstance(err.cause, ApplicationError) and err.cause.type == "wrong_state"
    except RPCError as err:
        assert err.status == RPCStatusCode.NOT_FOUND
    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert not _contains_code(logged, code) and not _contains_code(logged, wrong)
    with contextlib.suppress(RPCError):
        await handle.cancel()
