"""Starting and reading MARSA MAROC invoice requests, shared by the JSON API and the portal."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlmodel import Session
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError

from portnet.models import Company, User
from portnet.queries import InvoiceRow, invoices_for_user, row_of
from portnet.settings import Settings
from workflows import details
from workflows.invoice_request import (
    InvoiceRequestInput,
    InvoiceRequestView,
    InvoiceRequestWorkflow,
    request_workflow_id,
)

UNAVAILABLE_MESSAGE = "Le service de demande de factures est momentanément indisponible. Réessayez plus tard."
_CUSTOMER_ID = re.compile(r"^[0-9A-Za-z]{1,20}$")
_INVOICE_NUMBER = re.compile(r"^[0-9A-Za-z/-]{1,32}$")


@dataclass
class RequestRefused(Exception):
    status_code: int
    message: str


def new_request_id() -> str:
    return "MR" + secrets.token_hex(6).upper()


def terminals(settings: Settings) -> list[tuple[str, str]]:
    return settings.marsa_terminals()


async def start_request(
    client: Client,
    settings: Settings,
    db: Session,
    user: User,
    terminal: str,
    customer_id: str | None,
    invoice_number: str | None,
) -> str:
    if user.company_id is None:
        raise RequestRefused(403, "Réservé aux clients rattachés à une société.")
    company = db.get(Company, user.company_id)
    assert company is not None
    codes = {code for code, _ in terminals(settings)}
    terminal = (terminal or "").strip().upper()
    if terminal not in codes:
        raise RequestRefused(422, "Choisissez un terminal MARSA MAROC de la liste.")
    customer_id = (customer_id or "").strip()
    invoice_number = (invoice_number or "").strip()
    if not customer_id and not invoice_number:
        raise RequestRefused(422, "Saisissez votre identifiant MARSA MAROC ou un numéro de facture.")
    if not company.marsa_customer_id:
        raise RequestRefused(
            422, "Votre société n'a pas d'identifiant MARSA MAROC : contactez le support PortNet."
        )
    if customer_id and (not _CUSTOMER_ID.match(customer_id) or customer_id != company.marsa_customer_id):
        raise RequestRefused(403, "Cet identifiant MARSA MAROC n'est pas celui de votre société.")
    if invoice_number and not _INVOICE_NUMBER.match(invoice_number):
        raise RequestRefused(422, "Numéro de facture invalide.")
    request_id = new_request_id()
    terminal_name = dict(terminals(settings))[terminal]
    await client.start_workflow(
        InvoiceRequestWorkflow.run,
        InvoiceRequestInput(
            request_id=request_id,
            company_id=user.company_id,
            terminal=terminal,
            customer_id=company.marsa_customer_id,
            invoice_number=invoice_number or None,
            user_name=user.username,
        ),
        id=request_workflow_id(request_id),
        task_queue=settings.temporal_task_queue,
        static_summary=details.marsa_request_summary(
            terminal, company.marsa_customer_id, company.name, company.customs_code, invoice_number or None
        ),
        static_details=details.marsa_request_details(
            request_id,
            terminal,
            terminal_name,
            company.marsa_customer_id,
            company.name,
            company.customs_code,
            invoice_number or None,
        ),
    )
    return request_id


async def read_request(client: Client, request_id: str, user: User) -> InvoiceRequestView | None:
    """The request's progress (a query while it runs, its result once done); None if not the user's."""
    if not re.fullmatch(r"MR[0-9A-F]{12}", request_id):
        return None
    handle = client.get_workflow_handle_for(InvoiceRequestWorkflow.run, request_workflow_id(request_id))
    try:
        description = await handle.describe()
        view: InvoiceRequestView | None
        if description.status == WorkflowExecutionStatus.COMPLETED:
            view = await handle.result()
        elif description.status == WorkflowExecutionStatus.RUNNING:
            view = await handle.query(InvoiceRequestWorkflow.progress)
        else:
            return None
    except (RPCError, WorkflowFailureError):
        return None
    if view is None or (user.company_id is not None and view.company_id != user.company_id):
        return None
    return view


def invoices_of(db: Session, view: InvoiceRequestView, company_id: int | None) -> list[InvoiceRow]:
    found = {inv.id: (inv, em, co) for inv, em, co in invoices_for_user(db, view.invoice_ids, company_id)}
    return [row_of(*found[i]) for i in view.invoice_ids if i in found]


def percent(view: InvoiceRequestView) -> int:
    if view.status != "running":
        return 100
    if not view.pages_total:
        return 5
    return min(99, int(100 * view.pages_done / view.pages_total))
