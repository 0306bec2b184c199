"""InvoiceRequestWorkflow: one execution per "Nouvelle demande de facture" to MARSA MAROC.

Page by page: fetch from MARSA MAROC (retried with backoff on timeouts and 5xx, heartbeating while
MARSA MAROC is slow), then upsert into the ledger. Progress is a query; a 401, 404 or malformed
answer ends the request as "failed" with a French message, never as a workflow failure.

Its Temporal type stays "MarsaRequestWorkflow", the name recorded histories and running requests
carry; workflow ids stay ``marsa-request-<id>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import marsa_maroc
    from activities.marsa_maroc import MarsaPage, MarsaPageInput, MarsaUpsertInput, MarsaUpsertResult
    from workflows import details
    from workflows.policies import (
        INVOICE_PAGE_GIVE_UP,
        INVOICE_PAGE_HEARTBEAT,
        INVOICE_PAGE_RETRY,
        INVOICE_PAGE_TIMEOUT,
        INVOICE_UPSERT_RETRY,
        INVOICE_UPSERT_TIMEOUT,
    )

# A safety net against a partner that would page forever.
MAX_PAGES = 200
UNAVAILABLE = "MARSA MAROC ne répond pas pour le moment. Réessayez dans quelques minutes."


@dataclass
class InvoiceRequestInput:
    request_id: str
    company_id: int
    terminal: str
    # The company's customer id at MARSA MAROC: asked for, or the owner every returned row must have.
    customer_id: str
    invoice_number: str | None = None
    user_name: str | None = None


@dataclass
class InvoiceRequestView:
    request_id: str
    company_id: int
    terminal: str
    customer_id: str
    invoice_number: str | None
    status: str = "running"  # running | completed | failed
    pages_done: int = 0
    pages_total: int = 0
    received: int = 0
    created: int = 0
    updated: int = 0
    kept: int = 0
    invoice_ids: list[int] = field(default_factory=list)
    error: str | None = None
    error_code: str | None = None


def request_workflow_id(request_id: str) -> str:
    return f"marsa-request-{request_id}"


@workflow.defn(name="MarsaRequestWorkflow")
class InvoiceRequestWorkflow:
    def __init__(self) -> None:
        self._view: InvoiceRequestView | None = None

    @workflow.query
    def progress(self) -> InvoiceRequestView | None:
        return self._view

    @workflow.run
    async def run(self, inp: InvoiceRequestInput) -> InvoiceRequestView:
        view = InvoiceRequestView(
            request_id=inp.request_id,
            company_id=inp.company_id,
            terminal=inp.terminal,
            customer_id=inp.customer_id,
            invoice_number=inp.invoice_number,
        )
        self._view = view
        self._show_phase()
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
                    start_to_close_timeout=INVOICE_PAGE_TIMEOUT,
                    heartbeat_timeout=INVOICE_PAGE_HEARTBEAT,
                    schedule_to_close_timeout=INVOICE_PAGE_GIVE_UP,
                    retry_policy=INVOICE_PAGE_RETRY,
                    summary=f"Page {page_no} des factures MARSA MAROC {inp.terminal}",
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
                    start_to_close_timeout=INVOICE_UPSERT_TIMEOUT,
                    retry_policy=INVOICE_UPSERT_RETRY,
                    summary=f"Enregistrement de {len(page.items)} facture(s) MARSA MAROC",
                )
                view.created += result.created
                view.updated += result.updated
                view.kept += result.kept
                for invoice_id in result.invoice_ids:
                    if invoice_id not in view.invoice_ids:
                        view.invoice_ids.append(invoice_id)
                view.pages_done = page_no
                self._show_phase()
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
            self._show_phase()
            return view
        view.status = "completed"
        self._show_phase()
        return view

    def _show_phase(self) -> None:
        """The Web UI's current details: pages read so far, then how the request ended."""
        view = self._view
        assert view is not None
        workflow.set_current_details(
            details.request_phase(view.status, view.pages_done, view.pages_total, view.received, view.error)
        )
