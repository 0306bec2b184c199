"""MARSA MAROC invoicing: the HTTP adapter (one page per call) and the idempotent ledger upsert.

The adapter sorts failures for Temporal: timeouts, connection errors and 5xx raise ordinary
exceptions (retried with backoff by the workflow's policy); 401, 404 and malformed answers raise
non-retryable ``ApplicationError``s whose message is the French text the user sees.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import partner_client
from portnet.db import session_scope
from portnet.marsa_terminals import ensure_terminal_emitter
from portnet.messagelog import append_message
from portnet.models import Document, Invoice, InvoiceHold, InvoiceMessage, PrestationLine
from portnet.money import to_money
from portnet.seed.guide import CREATION_MESSAGE, document_name
from portnet.settings import get_settings
from portnet.statuses import InvoiceStatus


@dataclass
class MarsaPageInput:
    request_id: str
    terminal: str
    customer_id: str | None
    invoice_number: str | None
    page: int


@dataclass
class MarsaLine:
    """One prestation billed on the invoice, as MARSA MAROC lists it."""

    prestation: str
    operation_type: str
    reference: str | None = None


@dataclass
class MarsaInvoiceRow:
    number: str
    type: str
    customer_id: str
    issued_at: str
    due_at: str | None
    amount_ht: str
    amount_tva: str
    amount_ttc: str
    currency: str
    status: str
    lines: list[MarsaLine] = field(default_factory=list)


@dataclass
class MarsaPage:
    page: int
    pages: int
    total: int
    items: list[MarsaInvoiceRow] = field(default_factory=list)


@dataclass
class MarsaUpsertInput:
    request_id: str
    company_id: int
    terminal: str
    customer_id: str
    items: list[MarsaInvoiceRow] = field(default_factory=list)


@dataclass
class MarsaUpsertResult:
    invoice_ids: list[int] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    # Rows left as they are: already paid or in payment here, or another company's.
    kept: int = 0


UNAUTHORIZED = "MarsaUnauthorized"
NOT_FOUND = "MarsaNotFound"
MALFORMED = "MarsaMalformed"
NON_RETRYABLE = [UNAUTHORIZED, NOT_FOUND, MALFORMED]

MESSAGES = {
    UNAUTHORIZED: "MARSA MAROC a refusé l'accès de PortNet (authentification). Contactez le support PortNet.",
    NOT_FOUND: "MARSA MAROC ne connaît pas ce client ou cette facture sur ce terminal.",
    MALFORMED: "MARSA MAROC a renvoyé une réponse illisible. Réessayez plus tard ou contactez le support.",
}


def _fail(kind: str, detail: str) -> ApplicationError:
    return ApplicationError(MESSAGES[kind], detail, type=kind, non_retryable=True)


def _text(value: Any, limit: int) -> str:
    text = str(value or "").strip()
    if len(text) > limit or any(ord(c) < 32 for c in text):
        raise ValueError("bad text")
    return text


def _line(item: Any) -> MarsaLine:
    if not isinstance(item, dict):
        raise ValueError("line is not an object")
    prestation, operation = _text(item.get("prestation"), 100), _text(item.get("operation_type"), 100)
    if not prestation or not operation:
        raise ValueError("line without prestation")
    return MarsaLine(prestation, operation, _text(item.get("reference"), 60) or None)


def _row(item: Any) -> MarsaInvoiceRow:
    if not isinstance(item, dict):
        raise ValueError("row is not an object")
    number = str(item["invoice_number"]).strip()
    if not number or len(number) > 32:
        raise ValueError("bad invoice number")
    issued = datetime.fromisoformat(str(item["issued_at"])).isoformat()
    due = item.get("due_at")
    ht, ttc = Decimal(str(item["amount_ht"])), Decimal(str(item["amount_ttc"]))
    tva = Decimal(str(item.get("amount_tva") or ttc - ht))
    if ht < 0 or ttc < ht:
        raise ValueError("bad amounts")
    return MarsaInvoiceRow(
        lines=[_line(line) for line in item.get("lines") or []][:20],
        number=number,
        type=str(item.get("type") or "principale"),
        customer_id=str(item["customer_id"]),
        issued_at=issued,
        due_at=datetime.fromisoformat(str(due)).isoformat() if due else None,
        amount_ht=f"{ht:.2f}",
        amount_tva=f"{tva:.2f}",
        amount_ttc=f"{ttc:.2f}",
        currency=str(item.get("currency") or "MAD"),
        status=str(item.get("status") or "unpaid"),
    )


def parse_page(raw: bytes) -> MarsaPage:
    try:
        data = json.loads(raw)
        items = [_row(i) for i in data["items"]]
        return MarsaPage(
            page=int(data["page"]), pages=int(data["pages"]), total=int(data["total"]), items=items
        )
    except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
        raise _fail(MALFORMED, f"malformed answer: {exc}") from None


async def _heartbeating(coro: Any) -> Any:
    """Awaits ``coro`` while heartbeating every second, so a slow MARSA MAROC is not a dead worker."""
    task = asyncio.ensure_future(coro)
    while True:
        done, _ = await asyncio.wait({task}, timeout=1.0)
        if done:
            return task.result()
        activity.heartbeat("waiting for MARSA MAROC")


@activity.defn
async def fetch_invoice_page(inp: MarsaPageInput) -> MarsaPage:
    settings = get_settings()
    activity.heartbeat(f"page {inp.page}")
    params: dict[str, str | int] = {
        "terminal": inp.terminal,
        "page": inp.page,
        "page_size": settings.marsa_maroc_page_size,
    }
    if inp.invoice_number:
        params["invoice_number"] = inp.invoice_number
    else:
        params["customer_id"] = inp.customer_id or ""
    url = settings.marsa_maroc_base_url.rstrip("/") + "/api/v1/invoices"
    client = partner_client("marsa_maroc", timeout=settings.marsa_maroc_timeout_seconds)
    response = await _heartbeating(
        client.get(
            url,
            params=params,
            headers={
                "Authorization": f"Bearer {settings.marsa_maroc_api_token}",
                "Accept": "application/json",
                "X-Request-Id": inp.request_id,
            },
        )
    )
    if response.status_code in (401, 403):
        raise _fail(UNAUTHORIZED, f"HTTP {response.status_code}")
    if response.status_code == 404:
        raise _fail(NOT_FOUND, f"HTTP 404: {response.text[:200]}")
    if response.status_code >= 500 or response.status_code == 429:
        # Retryable: MARSA MAROC busy or down.
        raise RuntimeError(f"MARSA MAROC answered HTTP {response.status_code}")
    if response.status_code != 200:
        raise _fail(MALFORMED, f"HTTP {response.status_code}: {response.text[:200]}")
    return parse_page(response.content)


def _naive(iso: str) -> datetime:
    return datetime.fromisoformat(iso).replace(tzinfo=None)


def _complete(
    session: Session, invoice: Invoice, row: MarsaInvoiceRow, emitter_code: str, terminal: str
) -> None:
    """What every invoice of the ledger has: prestation lines, the creation message, its document.

    Each part is added only where missing, so a retried page or a second request adds nothing.
    """
    assert invoice.id is not None
    def has(model: Any) -> bool:
        found = session.exec(select(model.id).where(model.invoice_id == invoice.id).limit(1)).first()
        return found is not None

    if not has(PrestationLine):
        lines = row.lines or [MarsaLine("Prestations portuaires MARSA MAROC", f"Terminal {terminal}", None)]
        for line in lines:
            session.add(
                PrestationLine(
                    invoice_id=invoice.id,
                    prestation=line.prestation,
                    operation_type=line.operation_type,
                    reference=line.reference,
                )
            )
    if not has(InvoiceMessage):
        append_message(
            session,
            invoice.id,
            function=CREATION_MESSAGE["function"],
            name=CREATION_MESSAGE["name"],
            state=InvoiceStatus.UNPAID.value,
            receiver=CREATION_MESSAGE["receiver"],
            observations=CREATION_MESSAGE["observations"],
            at=invoice.created_at,
        )
    document = select(Document.id).where(Document.invoice_id == invoice.id, Document.kind == "invoice")
    if session.exec(document.limit(1)).first() is None:
        session.add(
            Document(
                invoice_id=invoice.id,
                kind="invoice",
                name=document_name(invoice.id, emitter_code, invoice.created_at, invoice.number),
                description="Facture",
                content=None,
                created_at=invoice.created_at,
            )
        )
    session.flush()


@activity.defn
def upsert_invoices(inp: MarsaUpsertInput) -> MarsaUpsertResult:
    """Adds or refreshes the page's invoices; idempotent, and never touches one being paid or paid.

    The ledger's unique (emitter, number) is the arbiter: a row repeated across pages, a request
    asked twice or two requests at once all end on the same invoice.
    """
    settings = get_settings()
    result = MarsaUpsertResult()
    with session_scope() as session:
        # The terminal is the emitter: each terminal's invoices under its own MARSA MAROC emitter.
        emitter = ensure_terminal_emitter(session, settings, inp.terminal)
        assert emitter.id is not None
        for row in inp.items:
            if row.customer_id != inp.customer_id:
                result.kept += 1  # another customer's invoice (looked up by number): not ours to see
                continue
            existing = session.exec(
                select(Invoice).where(Invoice.emitter_id == emitter.id, Invoice.number == row.number)
            ).first()
            if existing is None:
                invoice = Invoice(
                    number=row.number,
                    type=row.type if row.type in ("principale", "avoir", "complementaire") else "principale",
                    emitter_id=emitter.id,
                    company_id=inp.company_id,
                    invoice_date=_naive(row.issued_at),
                    due_date=_naive(row.due_at) if row.due_at else None,
                    amount_ht=to_money(row.amount_ht),
                    amount_tva=to_money(row.amount_tva),
                    amount_ttc=to_money(row.amount_ttc),
                    currency=row.currency,
                    status=InvoiceStatus.UNPAID.value,
                    # The guide: MARSA MAROC invoices are paid through CMI (card, Fatourati) only.
                    payment_methods="cmi",
                    description=f"Facture MARSA MAROC, terminal {inp.terminal}, client {row.customer_id}",
                )
                try:
                    with session.begin_nested():
                        session.add(invoice)
                        session.flush()
                except IntegrityError:
                    # A concurrent request inserted it first: take theirs.
                    existing = session.exec(
                        select(Invoice).where(Invoice.emitter_id == emitter.id, Invoice.number == row.number)
                    ).one()
                else:
                    assert invoice.id is not None
                    _complete(session, invoice, row, emitter.code, inp.terminal)
                    result.created += 1
                    result.invoice_ids.append(invoice.id)
                    continue
            assert existing.id is not None
            if existing.company_id != inp.company_id:
                result.kept += 1
                continue
            # An invoice retrieved before lines, messages and documents were kept gets them now.
            _complete(session, existing, row, emitter.code, inp.terminal)
            if existing.id not in result.invoice_ids:
                result.invoice_ids.append(existing.id)
            held = session.get(InvoiceHold, existing.id) is not None
            if existing.status != InvoiceStatus.UNPAID.value or held:
                # Paid, in payment or awaiting MARSA MAROC here: a stale "unpaid" answer changes nothing.
                result.kept += 1
                continue
            fresh = (
                to_money(row.amount_ht),
                to_money(row.amount_tva),
                to_money(row.amount_ttc),
                _naive(row.due_at) if row.due_at else existing.due_date,
            )
            if fresh != (existing.amount_ht, existing.amount_tva, existing.amount_ttc, existing.due_date):
                existing.amount_ht, existing.amount_tva, existing.amount_ttc, existing.due_date = fresh
                session.add(existing)
                result.updated += 1
    return result


ACTIVITIES: list[Callable[..., Any]] = [fetch_invoice_page, upsert_invoices]
