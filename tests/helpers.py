"""Small helpers the test modules share: a worker on a client, a payment input, a wait, the payloads
of a history."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHandle
from temporalio.converter import PayloadCodec

from portnet.settings import get_settings
from worker import build_worker
from workflows.payment import PaymentWorkflow
from workflows.types import PayerInfo, PaymentInput, PaymentView

T = TypeVar("T")


@asynccontextmanager
async def running_worker(client: Client, task_queue: str | None = None) -> AsyncIterator[str]:
    settings = get_settings()
    queue = task_queue or f"test-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=32) as executor:
        worker = build_worker(client, settings.model_copy(update={"temporal_task_queue": queue}), executor)
        async with worker:
            yield queue


def payment_input(
    company_id: int,
    invoice_ids: list[int],
    deadline: int = 1200,
    email: str = "payeur@sataa.ma",
    user_id: int | None = None,
) -> PaymentInput:
    return PaymentInput(
        payment_id="PN" + uuid.uuid4().hex[:12].upper(),
        channel="cmi_card",
        company_id=company_id,
        user_id=user_id,
        user_name="sataa",
        invoice_ids=invoice_ids,
        payer=PayerInfo(name="SATAA IMPORT EXPORT SARL AU", email=email),
        payment_deadline_seconds=deadline,
        emitter_ack_deadline_seconds=3600,
    )


async def start(
    client: Client, inp: PaymentInput, queue: str
) -> WorkflowHandle[PaymentWorkflow, PaymentView]:
    return await client.start_workflow(
        PaymentWorkflow.run, inp, id=f"payment-{inp.payment_id}", task_queue=queue
    )


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 20.0, every: float = 0.05
) -> T:
    """Polls until the probe returns something truthy; fails with the last value after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: T | None = None
    while asyncio.get_running_loop().time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


async def wait_status(
    handle: WorkflowHandle[PaymentWorkflow, PaymentView], *statuses: str, timeout: float = 20.0
) -> PaymentView:
    async def probe() -> PaymentView | None:
        view = await handle.query(PaymentWorkflow.state)
        return view if view is not None and view.status in statuses else None

    return await eventually(probe, timeout)


def history_payloads(history_json: str) -> list[Payload]:
    """Every payload of a history in protobuf JSON (``fetch_history().to_json()`` or ``temporal
    workflow show --output json``): inputs, results, signals, updates, queries, failures, markers."""
    found: list[Payload] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            metadata = node.get("metadata")
            if isinstance(metadata, dict) and "encoding" in metadata:
                found.append(json_format.ParseDict(node, Payload(), ignore_unknown_fields=True))
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(history_json))
    return found


async def history_payload_texts(history_json: str, codec: PayloadCodec | None = None) -> list[str]:
    """The payloads' data as text, opened by ``codec`` first if given (what finance reads in the UI)."""
    payloads = history_payloads(history_json)
    if codec is not None:
        payloads = await codec.decode(payloads)
    return [p.data.decode("utf-8", errors="replace") for p in payloads]


def encodings(payloads: list[Payload]) -> set[str]:
    return {p.metadata["encoding"].decode() for p in payloads}
