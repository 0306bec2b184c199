"""Invoice search, detail, PDF and the emitter look-up."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from portnet import queries
from portnet.documents import render_invoice_pdf
from portnet.i18n import N_
from portnet.money import api_amount
from portnet.statuses import InvoiceStatus, MessageFunction
from web.api.schemas import (
    DocumentOut,
    EmitterOut,
    InvoiceDetailOut,
    InvoiceOut,
    InvoicePage,
    InvoicePaymentOut,
    MessageOut,
    PrestationOut,
)
from web.deps import DB, CurrentUser, company_scope
from web.invoice_pdf import invoice_document
from web.limits import MAX_PAGE, RowIdPath
from web.locale import request_language

router = APIRouter(prefix="/api/v1", tags=["invoices"])


def criteria_of(
    number: str | None = None,
    type: str | None = None,
    status: str | None = None,
    emitter: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    prestation: str | None = None,
    operation_type: str | None = None,
    reference: str | None = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=queries.MAX_PAGE_SIZE)] = 20,
) -> queries.InvoiceSearch:
    """The API's dependency and the portal's parser: blank fields are no criterion; a bad value is a 422."""

    def clean(value: str | None) -> str | None:
        return value.strip() if value and value.strip() else None

    try:
        raw_from, raw_to = clean(date_from), clean(date_to)
        d_from = date.fromisoformat(raw_from) if raw_from else None
        d_to = date.fromisoformat(raw_to) if raw_to else None
    except ValueError:
        raise HTTPException(
            status_code=422, detail=N_("Date invalide (format attendu AAAA-MM-JJ).")
        ) from None
    if clean(status) and status not in {s.value for s in InvoiceStatus}:
        raise HTTPException(status_code=422, detail=f"Statut inconnu: {status}.")
    return queries.InvoiceSearch(
        number=clean(number),
        type=clean(type),
        status=clean(status),
        emitter=clean(emitter),
        date_from=d_from,
        date_to=d_to,
        prestation=clean(prestation),
        operation_type=clean(operation_type),
        reference=clean(reference),
        page=min(max(1, page), MAX_PAGE),
        page_size=max(1, min(page_size, queries.MAX_PAGE_SIZE)),
    )


@router.get("/invoices", response_model=InvoicePage)
def list_invoices(
    user: CurrentUser, db: DB, criteria: Annotated[queries.InvoiceSearch, Depends(criteria_of)]
) -> InvoicePage:
    rows, count = queries.search_invoices(db, criteria, company_scope(user))
    exact = queries.count_is_exact(count, criteria.page, criteria.page_size)
    return InvoicePage(
        items=[InvoiceOut.of(r) for r in rows],
        total=count if exact else count - 1,
        total_exact=exact,
        page=criteria.page,
        page_size=criteria.page_size,
    )


@router.get(
    "/invoices/{invoice_id}", response_model=InvoiceDetailOut, responses={404: {"description": "Not found"}}
)
def get_invoice(invoice_id: RowIdPath, user: CurrentUser, db: DB) -> InvoiceDetailOut:
    detail = queries.invoice_detail(db, invoice_id, company_scope(user))
    if detail is None:
        raise HTTPException(status_code=404, detail=N_("Facture introuvable."))
    inv = detail.invoice
    base = InvoiceOut.of(queries.row_of(inv, detail.emitter, detail.company))
    return InvoiceDetailOut(
        **base.model_dump(),
        principal_number=inv.principal_number,
        description=inv.description,
        cancelled_at=inv.cancelled_at,
        prestations=[
            PrestationOut(
                prestation=p.prestation,
                operation_type=p.operation_type,
                reference=p.reference,
                end_date=p.end_date,
            )
            for p in detail.prestations
        ],
        payments=[
            InvoicePaymentOut(
                payment_id=p.id,
                channel=p.channel,
                status=p.status,
                transaction_id=p.partner_transaction_id,
                amount_ttc=api_amount(link.amount_ttc),
                paid_at=p.paid_at,
                in_force=link.in_force,
            )
            for p, link in detail.payments
        ],
        documents=[
            DocumentOut(
                id=d.id or 0,
                name=d.name,
                description=d.description,
                kind=d.kind,
                created_at=d.created_at,
                url=document_url(inv.id or 0, d.kind, d.payment_id),
            )
            for d in detail.documents
        ],
        messages=[
            MessageOut(
                seq=m.seq,
                function=m.function,
                function_label=MessageFunction(m.function).label,
                name=m.name,
                state=m.state,
                state_label=InvoiceStatus(m.state).label,
                date=m.created_at,
                user_name=m.user_name,
                receiver=m.receiver,
                observations=m.observations,
                needs_reply=m.needs_reply,
            )
            for m in detail.messages
        ],
    )


def document_url(invoice_id: int, kind: str, payment_id: str | None) -> str:
    if kind == "receipt" and payment_id:
        return f"/api/v1/payments/{payment_id}/receipt"
    return f"/api/v1/invoices/{invoice_id}/pdf"


@router.get(
    "/invoices/{invoice_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, 404: {"description": "Not found"}},
)
def invoice_pdf(invoice_id: RowIdPath, user: CurrentUser, db: DB, request: Request) -> Response:
    detail = queries.invoice_detail(db, invoice_id, company_scope(user))
    if detail is None:
        raise HTTPException(status_code=404, detail=N_("Facture introuvable."))
    pdf = render_invoice_pdf(invoice_document(detail, request_language(request, user)))
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="INV{detail.invoice.number}.pdf"'},
    )


@router.get("/emitters", response_model=list[EmitterOut])
def emitters(user: CurrentUser, db: DB, q: str | None = None) -> list[EmitterOut]:
    return [
        EmitterOut(
            code=e.code,
            name=e.name,
            cin=e.cin,
            rc_centre=e.rc_centre,
            rc_number=e.rc_number,
            ifu=e.ifu,
            address=e.address,
            active=e.active,
        )
        for e in queries.search_emitters(db, q)
    ]
