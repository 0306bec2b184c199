"""MarsaRequestWorkflow: one execution per "Nouvelle demande de facture".

Page by page: fetch from MARSA MAROC (retried with backoff on timeouts and 5xx, heartbeating while
MARSA MAROC is slow), then upsert into the ledger. Progress is a query; a 401, 404 or malformed
answer ends the request as "failed" with a French message, never as a workflow failure.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import marsa_maroc
    from workflows.marsa_types import (
        MarsaPage,
        MarsaPageInput,
        MarsaRequestInput,
        MarsaRequestView,
        MarsaUpsertInput,
        MarsaUpsertResult,
    )

FETCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=marsa_maroc.NON_RETRYABLE,
)
UPSERT_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=10,
)
# A safety net against a partner that would page forever.
MAX_PAGES = 200
UNAVAILABLE = "MARSA MAROC ne répond pas pour le moment. Réessayez dans quelques minutes."


def request_workflow_id(request_id: str) -> str:
    return f"marsa-request-{request_id}"


@workflow.defn
class MarsaRequestWorkflow:
    def __init__(self) -> None:
        self._view: MarsaRequestView | None = None

    @workflow.query
    def progress(self) -> MarsaRequestView | None:
        return self._view

    @workflow.run
    async def run(self, inp: MarsaRequestInput) -> MarsaRequestView:
        view = MarsaRequestView(
            request_id=inp.request_id,
            company_id=inp.company_id,
            terminal=inp.terminal,
            customer_id=inp.customer_id,
            invoice_number=inp.invoice_number,
        )
        self._view = view
        page_no = 1
        try:
            while True:
                page: MarsaPage = await workflow.execute_activity(
                    marsa_maroc.fetch_invoice_page,
                    MarsaPageInput(
                        request_id=inp.request_id,
                        terminal=inp.terminal,
                        customer_id=None if inp.invoice_number else inp.customer_id,
                        invoice_number=inp.invoice_number,
                        page=page_no,
                    ),
                    start_to_close_timeout=timedelta(seconds=60),
                    heartbeat_timeout=timedelta(seconds=10),
                    schedule_to_close_timeout=timedelta(minutes=10),
                    retry_policy=FETCH_RETRY,
                )
                view.pages_total = max(page.pages, page_no)
                view.received += len(page.items)
                result: MarsaUpsertResult = await workflow.execute_activity(
                    marsa_maroc.upsert_invoices,
                    MarsaUpsertInput(
                        request_id=inp.request_id,
                        company_id=inp.company_id,
                        terminal=inp.terminal,
                        customer_id=inp.customer_id,
                        items=page.items,
                    ),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=UPSERT_RETRY,
                )
                view.created += result.created
                view.updated += result.updated
                view.kept += result.kept
                for invoice_id in result.invoice_ids:
                    if invoice_id not in view.invoice_ids:
                        view.invoice_ids.append(invoice_id)
                view.pages_done = page_no
                if page_no >= page.pages or page_no >= MAX_PAGES or not page.items:
                    break
                page_no += 1
        except ActivityError as err:
            cause = err.cause
            view.status = "failed"
            if isinstance(cause, ApplicationError) and cause.type in marsa_maroc.NON_RETRYABLE:
                view.error_code = cause.type
                view.error = cause.message
            else:
                view.error_code = "unavailable"
                view.error = UNAVAILABLE
            workflow.logger.warning("MARSA MAROC request %s failed: %s", inp.request_id, err)
            return view
        view.status = "completed"
        return view
