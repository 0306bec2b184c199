"""Turning the payload codec on is a deployment: attempts recorded without it must replay and go on.

A history recorded by a worker and a client without the codec (clear JSON payloads) replays with the
codec's converter, and a worker with the codec picks the attempt up where it waits, reads its clear
input, and writes what follows sealed; the mixed history replays too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlmodel import Session
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from portnet.models import Invoice
from portnet.settings import get_settings
from portnet.temporal_codec import data_converter
from tests.support.payloads import encodings, history_payloads
from tests.support.workers import payment_input, running_worker, start, wait_status
from worker import ACTIVITIES, WORKFLOWS
from workflows.invoice_request import InvoiceRequestWorkflow
from workflows.payment import PaymentWorkflow
from workflows.types import PaymentView

LOCAL_ACTIVITY_BOOKKEEPING = {
    "seq", "attempt", "activity_id", "activity_type", "complete_time", "backoff", "original_schedule_time",
    "activation_index",
}  # fmt: skip


def replayer() -> Replayer:
    return Replayer(
        workflows=[PaymentWorkflow, InvoiceRequestWorkflow], data_converter=data_converter(get_settings())
    )


async def test_a_history_recorded_without_the_codec_replays_and_continues_with_it(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    # Before the deployment: default converter on both sides.
    plain = Client(time_env.client.service_client, namespace=time_env.client.namespace)
    invoice = make_invoice()
    inp = payment_input(invoice.company_id, [invoice.id or 0], deadline=1200, email="avant.codec@sataa.ma")
    queue = f"before-codec-{inp.payment_id}"
    # No workflow cache: the next workflow task goes to the queue, not to this worker's sticky queue.
    with ThreadPoolExecutor(max_workers=8) as executor:
        old_worker = Worker(
            plain, task_queue=queue, workflows=WORKFLOWS, activities=ACTIVITIES,
            activity_executor=executor, max_cached_workflows=0,
        )  # fmt: skip
        async with old_worker:
            handle = await start(plain, inp, queue)
            await wait_status(handle, "awaiting_payer")
    before = await handle.fetch_history()
    assert encodings(history_payloads(before.to_json())) == {"json/plain"}
    assert any(b"avant.codec@sataa.ma" in p.data for p in history_payloads(before.to_json()))
    await replayer().replay_workflow(before)

    # After: the codec's worker and client take over the attempt in flight.
    coded: WorkflowHandle[PaymentWorkflow, PaymentView] = time_env.client.get_workflow_handle(
        handle.id, result_type=PaymentView
    )
    async with running_worker(time_env.client, task_queue=queue):
        view = await wait_status(coded, "awaiting_payer")  # answered from the clear input
        assert view.amount == "120.00"
        await time_env.sleep(timedelta(seconds=1300))  # past the deadline
        result = await coded.result()
    assert result.status == "expired"
    after = await coded.fetch_history()
    payloads = history_payloads(after.to_json())
    assert "binary/encrypted" in encodings(payloads)
    sealed_since = [p for p in payloads if p.metadata["encoding"] == b"binary/encrypted"]
    assert not any(b"avant.codec@sataa.ma" in p.data for p in sealed_since)
    await replayer().replay_workflow(after)


async def test_a_sealed_history_replays_with_the_codec_only(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    inp = payment_input(invoice.company_id, [invoice.id or 0], deadline=60)
    async with running_worker(time_env.client) as queue:
        handle = await start(time_env.client, inp, queue)
        assert (await handle.result()).status == "expired"
    history = await handle.fetch_history()
    # In clear: the search attributes (typed), and the SDK's own bookkeeping of the local activity
    # (which activity, when, which attempt), never its input or result.
    clear = [p for p in history_payloads(history.to_json())
             if not p.metadata.get("type") and p.metadata["encoding"] != b"binary/encrypted"]  # fmt: skip
    assert clear and all(set(json.loads(p.data)) <= LOCAL_ACTIVITY_BOOKKEEPING for p in clear), clear
    await replayer().replay_workflow(history)
    # Without the key the replay cannot even read the input: the worker would fail its tasks, not guess.
    blind = await Replayer(workflows=[PaymentWorkflow]).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert blind.replay_failure is not None
