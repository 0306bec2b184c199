"""Shapes of the JSON API (OpenAPI at /docs). Amounts are strings with two decimals."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from portnet.money import api_amount
from portnet.queries import InvoiceRow
from portnet.statuses import InvoiceStatus, InvoiceType
from web.limits import UNSTORABLE_TEXT, RowId, storable
from workflows.types import PaymentView


def _all_storable(value: Any) -> bool:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return all(_all_storable(k) and _all_storable(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_all_storable(v) for v in value)
    return True


class ApiModel(BaseModel):
    """Every JSON body: unknown fields refused; no text the databases cannot take (web/limits.py)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        if not _all_storable(value):
            raise ValueError(UNSTORABLE_TEXT)
        return value


class LoginBody(ApiModel):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=200)


class PasswordBody(ApiModel):
    current_password: str = Field(min_length=1, max_length=200)
    # Longer than the policy's 128 so that the policy's French message explains a refusal.
    new_password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    username: str
    role: str
    company: str | None
    customs_code: str | None
    must_change_password: bool


class InvoiceOut(BaseModel):
    id: int
    number: str
    type: str
    type_label: str
    emitter: str
    emitter_code: str
    client: str
    client_code: str
    date: datetime
    due_date: datetime | None
    amount_ht: str
    amount_tva: str
    amount_ttc: str
    currency: str
    status: str
    status_label: str
    payment_methods: list[str]

    @classmethod
    def of(cls, row: InvoiceRow) -> InvoiceOut:
        return cls(
            id=row.id,
            number=row.number,
            type=row.type,
            type_label=InvoiceType(row.type).label,
            emitter=row.emitter_name,
            emitter_code=row.emitter_code,
            client=row.client_name,
            client_code=row.client_code,
            date=row.invoice_date,
            due_date=row.due_date,
            amount_ht=api_amount(row.amount_ht),
            amount_tva=api_amount(row.amount_tva),
            amount_ttc=api_amount(row.amount_ttc),
            currency=row.currency,
            status=row.status,
            status_label=InvoiceStatus(row.status).label,
            payment_methods=row.payment_methods,
        )


class InvoicePage(BaseModel):
    items: list[InvoiceOut]
    # Searches count up to 10 000 results (or to the end of the page asked for): past that, ``total``
    # is that many and ``total_exact`` false ("more than").
    total: int
    total_exact: bool = True
    page: int
    page_size: int


class PrestationOut(BaseModel):
    prestation: str
    operation_type: str
    reference: str | None
    end_date: datetime | None


class InvoicePaymentOut(BaseModel):
    payment_id: str
    channel: str
    status: str
    transaction_id: str | None
    amount_ttc: str
    paid_at: datetime | None
    in_force: bool


class DocumentOut(BaseModel):
    id: int
    name: str
    description: str
    kind: str
    created_at: datetime
    url: str


class MessageOut(BaseModel):
    seq: int
    function: str
    function_label: str
    name: str | None
    state: str
    state_label: str
    date: datetime
    user_name: str | None
    receiver: str | None
    observations: str | None
    needs_reply: bool


class InvoiceDetailOut(InvoiceOut):
    principal_number: str | None
    description: str | None
    cancelled_at: datetime | None
    prestations: list[PrestationOut]
    payments: list[InvoicePaymentOut]
    documents: list[DocumentOut]
    messages: list[MessageOut]


class EmitterOut(BaseModel):
    code: str
    name: str
    cin: str | None
    rc_centre: str | None
    rc_number: str | None
    ifu: str | None
    address: str | None
    active: bool


class PaymentBody(ApiModel):
    invoice_ids: list[RowId] = Field(min_length=1, max_length=50)
    channel: str
    payer: dict[str, str] | None = None
    # Cheque: {"cheque_number","bank"}; bank transfer: {"transfer_reference","transfer_date"}.
    declaration: dict[str, str] | None = None


class NextActionOut(BaseModel):
    type: str
    url: str | None = None
    fields: dict[str, str] | None = None
    code: str | None = None
    expires_at: str | None = None
    attempts_left: int | None = None
    resends_left: int | None = None
    resend_at: str | None = None


class PaymentOut(BaseModel):
    id: str
    workflow_id: str
    status: str
    channel: str
    amount: str
    invoice_ids: list[int]
    invoice_numbers: list[str]
    next_action: NextActionOut | None
    error: str | None
    transaction_id: str | None
    deadline: str | None
    declines: int
    last_decline: str | None
    receipt_url: str | None = Field(
        description="The receipt's PDF once issued: null before the payment succeeds, and for a "
        "moment after (the receipt is laid out just after the settlement); ask again."
    )

    @classmethod
    def of(cls, view: PaymentView) -> PaymentOut:
        action: Any = view.next_action
        return cls(
            id=view.id,
            workflow_id=view.workflow_id,
            status=view.status,
            channel=view.channel,
            amount=view.amount,
            invoice_ids=view.invoice_ids,
            invoice_numbers=view.invoice_numbers,
            next_action=NextActionOut(
                type=action.type,
                url=action.url,
                fields=action.fields,
                code=action.code,
                expires_at=action.expires_at,
                attempts_left=action.attempts_left,
                resends_left=action.resends_left,
                resend_at=action.resend_at,
            )
            if action
            else None,
            error=view.error,
            transaction_id=view.transaction_id,
            deadline=view.deadline,
            declines=view.declines,
            last_decline=view.last_decline,
            receipt_url=f"/api/v1/payments/{view.id}/receipt" if view.receipt_document_id else None,
        )


class ErrorOut(BaseModel):
    detail: str


def date_or_none(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
