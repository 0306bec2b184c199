"""The finance back-office pages (French): payments, awaiting confirmation, unapplied money, invoices.

Reachable from the portal menu for finance (and admin) users only. Every form carries the CSRF token;
decisions go through web.finance, like the JSON API.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from temporalio.client import Client
from temporalio.service import RPCError

from portnet import unapplied
from portnet.i18n import N_
from portnet.models import User
from portnet.statuses import Channel, InvoiceStatus, PaymentStatus, Role
from web.deps import DB, AppSettings
from web.finance import (
    FinanceError,
    PaymentFilters,
    awaiting_confirmation,
    cancel_payment,
    decide,
    finance_invoices,
    invoice_action,
    list_payments,
    payment_json,
)
from web.limits import RowIdPath, page_number
from web.pages.guards import CheckedForm, form_str, page_user
from web.pages.rendering import redirect, render
from web.temporal_queries import finance_links, invoice_url
from web.unapplied import apply_unapplied, list_unapplied, refund_unapplied

router = APIRouter(prefix="/finance")
log = logging.getLogger("portnet.web.finance")


async def finance_page_user(user: Annotated[User, Depends(page_user)]) -> User:
    if user.role not in (Role.FINANCE.value, Role.ADMIN.value):
        raise HTTPException(status_code=403, detail=N_("Réservé au service financier."))
    return user


FinancePageUser = Annotated[User, Depends(finance_page_user)]


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.get("/paiements")
def payments_page(request: Request, db: DB, user: FinancePageUser, settings: AppSettings) -> Response:
    q = request.query_params
    page = page_number(q.get("page"))
    filters = PaymentFilters(
        channel=q.get("channel") or None,
        status=q.get("status") or None,
        company=(q.get("company") or "").strip() or None,
        invoice=(q.get("invoice") or "").strip() or None,
        date_from=_date(q.get("date_from")),
        date_to=_date(q.get("date_to")),
        page=page,
        page_size=50,
    )
    rows, total = list_payments(db, filters)
    return render(
        request,
        "finance/payments.html",
        {
            "items": [payment_json(settings, p, c, d) for p, c, d in rows],
            "total": total,
            "page": page,
            "pages": max((total + 49) // 50, 1),
            "values": {
                k: q.get(k, "") for k in ("channel", "status", "company", "invoice", "date_from", "date_to")
            },
            "channels": [(c.value, c.label) for c in Channel],
            "statuses": [(s.value, s.label) for s in PaymentStatus],
            "temporal_list_url": (
                f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{settings.temporal_namespace}/workflows"
            ),
            "temporal_queries": finance_links(settings, datetime.now(UTC), filters.company, filters.invoice),
        },
        settings=settings,
    )


@router.get("/confirmations")
def confirmations_page(request: Request, db: DB, user: FinancePageUser, settings: AppSettings) -> Response:
    rows = awaiting_confirmation(db)
    return render(
        request,
        "finance/confirmations.html",
        {"items": [payment_json(settings, p, c, d) for p, c, d in rows]},
        settings=settings,
    )


@router.post("/paiements/{payment_id}/decision")
async def decision(
    request: Request, payment_id: str, db: DB, user: FinancePageUser, form: CheckedForm, settings: AppSettings
) -> Response:
    choice = form_str(form, "decision", 10)
    reason = form_str(form, "reason", 500)
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        return redirect(
            "/finance/confirmations", N_("Service de paiement indisponible, réessayez."), "error", settings
        )
    try:
        await decide(client, db, user, payment_id, choice == "confirm", reason)
    except FinanceError as err:
        return redirect("/finance/confirmations", err.message, "error", settings)
    except RPCError as err:
        log.warning("decision on %s failed: %s", payment_id, err)
        return redirect(
            "/finance/confirmations", N_("Service de paiement indisponible, réessayez."), "error", settings
        )
    verb = "confirmé" if choice == "confirm" else "rejeté"
    return redirect("/finance/confirmations", f"Règlement {payment_id} {verb}.", "success", settings)


@router.post("/paiements/{payment_id}/annuler")
async def cancel_page(
    request: Request, payment_id: str, db: DB, user: FinancePageUser, form: CheckedForm, settings: AppSettings
) -> Response:
    """Finance cancels a live attempt with a reason (the same operation as the API's)."""
    back = "/finance/paiements"
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        return redirect(back, N_("Service de paiement indisponible, réessayez."), "error", settings)
    try:
        outcome = await cancel_payment(client, db, user, payment_id, form_str(form, "reason", 500))
    except FinanceError as err:
        return redirect(back, err.message, "error", settings)
    if outcome is None:
        message = f"Annulation de {payment_id} demandée : elle sera prise en compte sous peu."
        return redirect(back, message, "info", settings)
    message = f"Tentative {payment_id} annulée : ses factures sont libérées."
    return redirect(back, message, "success", settings)


@router.get("/encaissements")
def unapplied_page(request: Request, db: DB, user: FinancePageUser, settings: AppSettings) -> Response:
    status = request.query_params.get("status", "open")
    return render(
        request,
        "finance/unapplied.html",
        {
            "items": list_unapplied(db, status or None),
            "status": status,
            "statuses": unapplied.STATUS_LABELS,
            "channels": {c.value: c.label for c in Channel},
        },
        settings=settings,
    )


@router.get("/encaissements-non-affectes")
def unapplied_list() -> Response:
    """The list's first address; finance's back-office page (apply, refund) is the one."""
    return RedirectResponse("/finance/encaissements", status_code=301)


@router.post("/encaissements/{unapplied_id}/affecter")
async def apply_page(
    request: Request,
    unapplied_id: RowIdPath,
    db: DB,
    user: FinancePageUser,
    form: CheckedForm,
    settings: AppSettings,
) -> Response:
    """Starts the application and says what the workflow answered: applied, or refused and why."""
    back = "/finance/encaissements"
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        return redirect(back, N_("Service de paiement indisponible, réessayez."), "error", settings)
    try:
        outcome = await apply_unapplied(
            client, settings, db, user, unapplied_id, form_str(form, "invoice_number", 40)
        )
    except FinanceError as err:
        return redirect(back, f"Affectation refusée : {err.message}", "error", settings)
    channel = Channel(outcome.channel).label if outcome.channel else ""
    message = f"Encaissement affecté à la facture {outcome.invoice_number} (paiement {channel})."
    return redirect(back, message, "success", settings)


@router.post("/encaissements/{unapplied_id}/rembourser")
def refund_page(
    unapplied_id: RowIdPath, db: DB, user: FinancePageUser, form: CheckedForm, settings: AppSettings
) -> Response:
    try:
        refund_unapplied(db, user, unapplied_id, form_str(form, "note", 500))
    except FinanceError as err:
        return redirect("/finance/encaissements", err.message, "error", settings)
    return redirect("/finance/encaissements", N_("Encaissement marqué à rembourser."), "success", settings)


@router.get("/factures")
def invoices_page(request: Request, db: DB, user: FinancePageUser, settings: AppSettings) -> Response:
    number = (request.query_params.get("number") or "").strip()
    status = request.query_params.get("status") or ""
    rows = finance_invoices(db, number or None, status or None) if (number or status) else []
    ctx: dict[str, Any] = {
        "rows": rows,
        "values": {"number": number, "status": status},
        "statuses": [(s.value, s.label) for s in InvoiceStatus],
        "searched": bool(number or status),
        "temporal_invoice_url": lambda number: invoice_url(settings, number),
    }
    return render(request, "finance/invoices.html", ctx, settings=settings)


@router.post("/factures/{invoice_id}/action")
async def invoice_action_page(
    request: Request,
    invoice_id: RowIdPath,
    db: DB,
    user: FinancePageUser,
    form: CheckedForm,
    settings: AppSettings,
) -> Response:
    action = form_str(form, "action", 10)
    back = f"/finance/factures?number={form_str(form, 'number', 40)}"
    client: Client | None = await request.app.state.temporal.get()
    try:
        invoice = await invoice_action(client, db, user, invoice_id, action, form_str(form, "reason", 500))
    except FinanceError as err:
        return redirect(back, err.message, "error", settings)
    label = InvoiceStatus(invoice.status).label
    return redirect(back, f"Facture {invoice.number} : {label}.", "success", settings)
