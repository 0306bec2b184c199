"""A worker on a test server, with the real activities or some replaced by fakes; a payment input;
starting an attempt and waiting for a status."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from portnet.models import Invoice
from portnet.settings import get_settings
from worker import ACTIVITIES, build_worker, role_options
from workflows.payment import PaymentWorkflow
from workflows.types import AmanpayPayer, AmanpaySettings, PayerInfo, PaymentInput, PaymentView

T = TypeVar("T")


@asynccontextmanager
async def running_worker(
    client: Client, task_queue: str | None = None, role: str = "all"
) -> AsyncIterator[str]:
    settings = get_settings()
    queue = task_queue or f"test-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=32) as executor:
        worker = build_worker(
            client, settings.model_copy(update={"temporal_task_queue": queue}), executor, role
        )
        async with worker:
            yield queue


def activity_name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__temporal_activity_definition").name)


@asynccontextmanager
async def worker_with_fakes(
    client: Client,
    fakes: list[Callable[..., Any]],
    task_queue: str | None = None,
    role: str = "all",
    **options: Any,
) -> AsyncIterator[str]:
    """The worker's workflows and activities (or its ``role``'s part, worker.py), each fake replacing
    the activity of its name; ``options`` go to the Worker (``max_cached_workflows=0``: a later
    worker on the same queue takes over at once)."""
    replaced = {activity_name(fake) for fake in fakes}
    activities = [a for a in ACTIVITIES if activity_name(a) not in replaced] + fakes
    queue = task_queue or f"test-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=16) as executor:
        async with Worker(
            client,
            task_queue=queue,
            **role_options(role, activities),
            activity_executor=executor,
            **options,
        ):
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


FATOURATI_REFERENCE_LIFE = 3 * 3600


def fatourati_input(company_id: int, invoice_ids: list[int]) -> PaymentInput:
    """A Fatourati attempt: a reference valid 3 hours, a reminder 30 minutes before its end."""
    inp = payment_input(company_id, invoice_ids, deadline=FATOURATI_REFERENCE_LIFE)
    inp.channel = "cmi_fatourati"
    inp.reminder_before_seconds = 1800
    return inp


def offline_input(company_id: int, invoice_ids: list[int], channel: str = "bank_transfer") -> PaymentInput:
    inp = payment_input(company_id, invoice_ids, deadline=30 * 24 * 3600)
    inp.channel = channel
    inp.declaration = (
        {"transfer_reference": "VIR-2026-001", "transfer_date": "2026-11-20"}
        if channel == "bank_transfer"
        else {"cheque_number": "1234567", "bank": "CIH Bank"}
    )
    return inp


def amanpay_input(invoice: Invoice, channel: str = "amanpay_paydirect") -> PaymentInput:
    """An Amanpay attempt (PayDirect by default; cash code, Amanty) for one invoice, payer filled in."""
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
