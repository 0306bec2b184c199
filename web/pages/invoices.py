"""Invoice management and consultation, the invoice detail ("Suivi du Facture"), the emitter look-up."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request, Response
from sqlmodel import Session, col, select

from portnet import queries
from portnet.i18n import N_
from portnet.marsa_terminals import emitter_label
from portnet.models import Company, PaymentInvoice, PrestationLine, UnappliedPayment
from portnet.money import NNBSP
from portnet.statuses import PAYABLE_STATUSES, InvoiceStatus, InvoiceType
from web import marsa
from web.api.invoices import criteria_of, document_url
from web.deps import DB, AppSettings, company_scope
from web.limits import page_number, row_id
from web.pages.guards import CheckedForm, PageUser, form_str, is_client
from web.pages.rendering import redirect, render
from workflows.invoice_request import InvoiceRequestView

router = APIRouter()

PAGE_SIZES = (10, 20, 50, 100)
DEFAULT_PAGE_SIZE = 20
# The search criteria, in the order of the guide's form; all of them travel in the query string.
CRITERIA = (
    "number",
    "type",
    "status",
    "date_from",
    "date_to",
    "emitter",
    "prestation",
    "operation_type",
    "reference",
)
FR_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$")


@dataclass(frozen=True)
class Screen:
    """The two list screens share the search; only management offers the selection and payment."""

    path: str
    title: str
    selectable: bool
    back: str


MANAGEMENT = Screen("/factures", N_("Gestion des factures"), True, "gestion")
CONSULTATION = Screen("/factures/consultation", N_("Consulter des factures"), False, "consultation")
SCREENS = {s.back: s for s in (MANAGEMENT, CONSULTATION)}


def _iso_date(value: str) -> str:
    """Accepts the French dd/mm/yyyy typed where the browser offers no date picker."""
    match = FR_DATE.match(value)
    if match:
        day, month, year = match.groups()
        return f"{year}-{int(month):02d}-{int(day):02d}"
    return value


def _int(value: str | None, default: int) -> int:
    """A small number from a link (page, page size); ``page_number`` keeps it ASCII and bounded."""
    return page_number(value, default)


def _choices(db: DB) -> dict[str, Any]:
    lines = PrestationLine.__table__.c  # type: ignore[attr-defined]
    return {
        "types": [(t.value, t.label) for t in InvoiceType],
        "statuses": [(s.value, s.label) for s in InvoiceStatus],
        "prestations": queries.distinct_values(db, lines.prestation),
        "operation_types": queries.distinct_values(db, lines.operation_type),
        "page_sizes": PAGE_SIZES,
    }


def _invoice_list(
    request: Request, db: DB, user: PageUser, settings: AppSettings, screen: Screen
) -> Response:
    params = request.query_params
    values = {name: (params.get(name) or "").strip()[:100] for name in CRITERIA}
    values["date_from"], values["date_to"] = _iso_date(values["date_from"]), _iso_date(values["date_to"])
    page = max(1, _int(params.get("page"), 1))
    page_size = _int(params.get("page_size"), DEFAULT_PAGE_SIZE)
    if page_size not in PAGE_SIZES:
        page_size = DEFAULT_PAGE_SIZE
    error: str | None = None
    rows: list[queries.InvoiceRow] = []
    count = 0
    try:
        criteria = criteria_of(
            values["number"],
            values["type"],
            values["status"],
            values["emitter"],
            values["date_from"],
            values["date_to"],
            values["prestation"],
            values["operation_type"],
            values["reference"],
            page,
            page_size,
        )
    except HTTPException as exc:
        error = str(exc.detail)
    else:
        if criteria.date_from and criteria.date_to and criteria.date_from > criteria.date_to:
            error = N_("La date de début (« du ») est postérieure à la date de fin (« au »).")
        elif criteria.type and criteria.type not in {t.value for t in InvoiceType}:
            error = f"Type de facture inconnu: {criteria.type}."
        else:
            rows, count = queries.search_invoices(db, criteria, company_scope(user))
            if not rows and count and page > 1:
                # Past the end (fewer results than when the link was made): the last page, not an empty one.
                criteria.page = page = -(-count // page_size)
                rows, count = queries.search_invoices(db, criteria, company_scope(user))
    pages = max(1, -(-count // page_size))
    page = min(page, pages)
    exact = queries.count_is_exact(count, page, page_size)
    # Past the count's limit: "10 000+" (the narrow no-break space of the guide's amounts).
    shown_count = str(count) if exact else f"{count - 1:,}".replace(",", NNBSP) + "+"
    kept = {k: v for k, v in values.items() if v}

    def page_url(target: int) -> str:
        return f"{screen.path}?{urlencode({**kept, 'page_size': page_size, 'page': target})}"

    can_pay = screen.selectable and is_client(user)
    payable = {s.value for s in PAYABLE_STATUSES}
    return render(
        request,
        "invoices/list.html",
        {
            "screen": screen,
            "values": values,
            "rows": rows,
            "count": shown_count,
            "page": page,
            "pages": pages,
            "page_size": page_size,
            "prev_url": page_url(page - 1) if page > 1 else None,
            "next_url": page_url(page + 1) if page < pages else None,
            "error": error,
            "can_pay": can_pay,
            "payable": payable,
            "emitter_lookup_url": "/factures/emetteurs?"
            + urlencode({"retour": screen.back, **{k: v for k, v in kept.items() if k != "emitter"}}),
            **_choices(db),
        },
        status_code=422 if error else 200,
        settings=settings,
    )


@router.get("/factures")
def management(request: Request, db: DB, user: PageUser, settings: AppSettings) -> Response:
    return _invoice_list(request, db, user, settings, MANAGEMENT)


@router.get("/factures/consultation")
def consultation(request: Request, db: DB, user: PageUser, settings: AppSettings) -> Response:
    return _invoice_list(request, db, user, settings, CONSULTATION)


REQUEST_PAGE_SIZE = 20


def _request_page(
    request: Request,
    db: DB,
    user: PageUser,
    settings: AppSettings,
    *,
    view: InvoiceRequestView | None = None,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    company = db.get(Company, user.company_id) if user.company_id is not None else None
    terminal_names = dict(marsa.terminals(settings))
    values = form or {
        "terminal": view.terminal if view else "",
        "customer_id": (company.marsa_customer_id or "") if company else "",
        "invoice_number": (view.invoice_number or "") if view else "",
    }
    chosen = values.get("terminal", "")
    rows: list[queries.InvoiceRow] = []
    page, pages = 1, 1
    if view is not None and view.status == "completed":
        everything = marsa.invoices_of(db, view, company_scope(user))
        pages = max(1, -(-len(everything) // REQUEST_PAGE_SIZE))
        page = min(max(1, _int(request.query_params.get("page"), 1)), pages)
        rows = everything[(page - 1) * REQUEST_PAGE_SIZE : page * REQUEST_PAGE_SIZE]
        count = len(everything)
    else:
        count = 0
    return render(
        request,
        "invoices/request.html",
        {
            "terminals": [(c, n, emitter_label(settings, c)) for c, n in marsa.terminals(settings)],
            "emitter_label": emitter_label(settings, chosen) if chosen in terminal_names else "",
            "values": values,
            "view": view,
            "percent": marsa.percent(view) if view else 0,
            "error": error or (view.error if view else None),
            "rows": rows,
            "count": count,
            "page": page,
            "pages": pages,
            "payable": PAYABLE_STATUSES,
            "can_pay": is_client(user),
        },
        settings=settings,
        status_code=status_code,
    )


@router.get("/factures/demande")
def invoice_request(request: Request, db: DB, user: PageUser, settings: AppSettings) -> Response:
    return _request_page(request, db, user, settings)


@router.post("/factures/demande")
async def invoice_request_send(
    request: Request, db: DB, user: PageUser, form: CheckedForm, settings: AppSettings
) -> Response:
    values = {
        "terminal": form_str(form, "terminal", 20),
        "customer_id": form_str(form, "customer_id", 40),
        "invoice_number": form_str(form, "invoice_number", 40),
    }
    client = await request.app.state.temporal.get()
    if client is None:
        return _request_page(
            request, db, user, settings, form=values, error=marsa.UNAVAILABLE_MESSAGE, status_code=503
        )
    try:
        request_id = await marsa.start_request(
            client,
            settings,
            db,
            user,
            values["terminal"],
            values["customer_id"] if not values["invoice_number"] else None,
            values["invoice_number"] or None,
        )
    except marsa.RequestRefused as refused:
        return _request_page(
            request, db, user, settings, form=values, error=refused.message, status_code=refused.status_code
        )
    return redirect(f"/factures/demande/{request_id}", settings=settings)


@router.get("/factures/demande/{request_id}")
async def invoice_request_progress(
    request: Request, request_id: str, db: DB, user: PageUser, settings: AppSettings
) -> Response:
    client = await request.app.state.temporal.get()
    if client is None:
        return _request_page(request, db, user, settings, error=marsa.UNAVAILABLE_MESSAGE, status_code=503)
    view = await marsa.read_request(client, request_id, user)
    if view is None:
        raise HTTPException(status_code=404, detail=N_("Demande de facture introuvable."))
    return _request_page(request, db, user, settings, view=view)


@router.get("/factures/emetteurs")
def emitter_lookup(request: Request, db: DB, user: PageUser, settings: AppSettings) -> Response:
    """The look-up dialog for browsers without JavaScript: each row links back with the emitter filled."""
    params = request.query_params
    q = (params.get("q") or "").strip()[:100]
    screen = SCREENS.get(params.get("retour") or "", MANAGEMENT)
    kept = {k: (params.get(k) or "").strip()[:100] for k in CRITERIA if k != "emitter" and params.get(k)}
    emitters = queries.search_emitters(db, q or None)
    rows = [(e, f"{screen.path}?{urlencode({**kept, 'emitter': e.code})}") for e in emitters]
    return render(
        request,
        "invoices/emitters.html",
        {
            "q": q,
            "rows": rows,
            "screen": screen,
            "kept": kept,
        },
        settings=settings,
    )


@router.get("/factures/{invoice_id}")
def invoice_detail(
    request: Request, invoice_id: str, db: DB, user: PageUser, settings: AppSettings
) -> Response:
    detail = None
    number = row_id(invoice_id)
    if number is not None:
        detail = queries.invoice_detail(db, number, company_scope(user))
    if detail is None:
        raise HTTPException(status_code=404, detail=N_("Facture introuvable."))
    inv = detail.invoice
    assert inv.id is not None
    documents = [
        {
            "name": d.name,
            "description": d.description,
            "created_at": d.created_at,
            "url": document_url(inv.id, d.kind, d.payment_id),
        }
        for d in detail.documents
    ]
    if not any(d.kind == "invoice" for d in detail.documents):
        # Invoice PDFs are rendered on demand; list it even when no document row was recorded.
        documents.insert(
            0,
            {
                "name": f"INV{inv.number}.pdf",
                "description": "Facture",
                "created_at": inv.created_at,
                "url": document_url(inv.id, "invoice", None),
            },
        )
    return render(
        request,
        "invoices/detail.html",
        {
            "d": detail,
            "inv": inv,
            "documents": documents,
            "payments": detail.payments,
            "unapplied": unapplied_for_invoice(db, inv.id),
            "can_pay": is_client(user) and inv.status in {s.value for s in PAYABLE_STATUSES},
        },
        settings=settings,
    )


def unapplied_for_invoice(db: Session, invoice_id: int) -> list[UnappliedPayment]:
    """Money that came for an attempt on this invoice and could not be applied (finance's to place)."""
    return list(
        db.exec(
            select(UnappliedPayment)
            .join(PaymentInvoice, col(PaymentInvoice.payment_id) == UnappliedPayment.payment_id)
            .where(PaymentInvoice.invoice_id == invoice_id)
            .order_by(col(UnappliedPayment.received_at))
        ).all()
    )
