"""MARSA MAROC invoice requests: completed over two pages, 401, retried after 503s, down for good."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle

from activities.marsa_maroc import MarsaInvoiceRow
from tests.histories.manifest import RecordedPath
from tests.histories.recording import Recording
from tests.histories.scenarios.common import Scenario
from tests.histories.world import TMTA, MarsaPlan
from workflows.invoice_request import InvoiceRequestInput, InvoiceRequestWorkflow

CUSTOMER_ID = "000236"


def row(number: str, ht: str, tva: str, ttc: str) -> MarsaInvoiceRow:
    return MarsaInvoiceRow(
        number=number,
        type="principale",
        customer_id=CUSTOMER_ID,
        issued_at="2026-11-03T00:00:00",
        due_at="2026-12-03T00:00:00",
        amount_ht=ht,
        amount_tva=tva,
        amount_ttc=ttc,
        currency="MAD",
        status="unpaid",
    )


PAGE_1 = [row("0231457", "10450.00", "2090.00", "12540.00"), row("0231502", "3200.00", "640.00", "3840.00")]
PAGE_2 = [row("0231588", "875.50", "175.10", "1050.60")]


async def _start(r: Recording, path: RecordedPath, plan: MarsaPlan) -> WorkflowHandle[Any, Any]:
    """As web/marsa.py starts a "Nouvelle demande de facture"."""
    r.world.marsa[path.business_id] = plan
    await r.client.start_workflow(
        InvoiceRequestWorkflow.run,
        InvoiceRequestInput(
            request_id=path.business_id,
            company_id=TMTA.id,
            terminal="CASA",
            customer_id=CUSTOMER_ID,
            invoice_number=None,
            user_name="tmta",
        ),
        id=path.workflow_id,
        task_queue=r.task_queue,
    )
    # A plain handle: the recorder lets time run while it waits for the result.
    return r.client.get_workflow_handle(path.workflow_id)


async def completed(r: Recording, path: RecordedPath) -> WorkflowHandle[Any, Any]:
    return await _start(r, path, MarsaPlan([PAGE_1, PAGE_2]))


async def failed(r: Recording, path: RecordedPath) -> WorkflowHandle[Any, Any]:
    return await _start(r, path, MarsaPlan([PAGE_1], unauthorized=True))


async def retried_then_completed(r: Recording, path: RecordedPath) -> WorkflowHandle[Any, Any]:
    return await _start(r, path, MarsaPlan([PAGE_1], busy_attempts=2))


async def unavailable(r: Recording, path: RecordedPath) -> WorkflowHandle[Any, Any]:
    return await _start(r, path, MarsaPlan([PAGE_1], busy_attempts=100))


SCENARIOS: dict[str, Scenario] = {
    "marsa_request_completed": completed,
    "marsa_request_failed": failed,
    "marsa_request_retried_then_completed": retried_then_completed,
    "marsa_request_unavailable": unavailable,
}
