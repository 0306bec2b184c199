"""What the MARSA MAROC invoice-request workflow and its activities exchange (issue 5)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MarsaRequestInput:
    request_id: str
    company_id: int
    terminal: str
    # The company's customer id at MARSA MAROC: asked for, or the owner every returned row must have.
    customer_id: str
    invoice_number: str | None = None
    user_name: str | None = None


@dataclass
class MarsaPageInput:
    request_id: str
    terminal: str
    customer_id: str | None
    invoice_number: str | None
    page: int


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


@dataclass
class MarsaRequestView:
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
