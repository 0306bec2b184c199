"""The finance back-office API: attempts, confirmations of cheques and transfers, unapplied money.

Finance (and admin) only; a client gets 403, nobody logged in 401.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from web.api.schemas import ApiModel, ErrorOut
from web.deps import DB, AppSettings, FinanceUser, Temporal
from web.finance import (
    FinanceError,
    PaymentFilters,
    cancel_payment,
    decide,
    invoice_action,
    list_payments,
    payment_json,
)
from web.limits import PageQuery, PaymentIdPath, RowIdPath
from web.unapplied import apply_unapplied, list_unapplied, refund_unapplied, unapplied_json

router = APIRouter(prefix="/api/v1/finance", tags=["finance"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 422, 503)
}


class DecisionBody(ApiModel):
    reason: str = Field(default="", max_length=500)


class ApplyBody(ApiModel):
    invoice_number: str = Field(min_length=1, max_length=40)


class RefundBody(ApiModel):
    note: str = Field(default="", max_length=500)


def _error(err: FinanceError) -> JSONResponse:
    return JSONResponse({"detail": err.message}, status_code=err.status_code)


@router.get("/payments", responses=ERRORS)
def payments(
    user: FinanceUser,
    db: DB,
    settings: AppSettings,
    channel: str | None = None,
    status: str | None = None,
    company: str | None = None,
    invoice: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    page: PageQuery = 1,
    page_size: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:
    rows, total = list_payments(
        db, PaymentFilters(channel, status, company, invoice, date_from, date_to, page, page_size)
    )
    return {"items": [payment_json(settings, p, c, d) for p, c, d in rows], "total": total}


@router.post("/payments/{payment_id}/confirm", status_code=202, responses=ERRORS)
async def confirm(
    payment_id: PaymentIdPath, user: FinanceUser, db: DB, client: Temporal, body: DecisionBody | None = None
) -> Any:
    try:
        await decide(client, db, user, payment_id, True, body.reason if body else "")
    except FinanceError as err:
        return _error(err)
    return {"status": "confirm_requested", "payment_id": payment_id}


@router.post("/payments/{payment_id}/reject", status_code=202, responses=ERRORS)
async def reject(
    payment_id: PaymentIdPath, body: DecisionBody, user: FinanceUser, db: DB, client: Temporal
) -> Any:
    try:
        await decide(client, db, user, payment_id, False, body.reason)
    except FinanceError as err:
        return _error(err)
    return {"status": "reject_requested", "payment_id": payment_id}


@router.get("/unapplied", responses=ERRORS)
def unapplied(user: FinanceUser, db: DB, status: str | None = None) -> dict[str, Any]:
    rows = list_unapplied(db, status)
    return {"items": [unapplied_json(r) for r in rows], "total": len(rows)}


@router.post("/unapplied/{unapplied_id}/apply", responses=ERRORS)
async def apply(
    unapplied_id: RowIdPath,
    body: ApplyBody,
    user: FinanceUser,
    db: DB,
    settings: AppSettings,
    client: Temporal,
) -> Any:
    """Applies the money to an invoice through ``ApplyUnappliedWorkflow``: 200 once applied (a payment
    on the money's own channel), 409 / 422 / 404 with the workflow's reason when refused."""
    try:
        outcome = await apply_unapplied(client, settings, db, user, unapplied_id, body.invoice_number)
    except FinanceError as err:
        return _error(err)
    return {
        "status": "applied",
        "invoice_number": outcome.invoice_number,
        "invoice_status": outcome.invoice_status,
        "payment_id": outcome.payment_id,
        "channel": outcome.channel,
    }


@router.post("/unapplied/{unapplied_id}/refund", responses=ERRORS)
def refund(unapplied_id: RowIdPath, body: RefundBody, user: FinanceUser, db: DB) -> Any:
    try:
        row = refund_unapplied(db, user, unapplied_id, body.note)
    except FinanceError as err:
        return _error(err)
    return unapplied_json(row)


class ReasonBody(ApiModel):
    reason: str = Field(min_length=3, max_length=500)


@router.post("/payments/{payment_id}/cancel", responses=ERRORS)
async def cancel(
    payment_id: PaymentIdPath, body: ReasonBody, user: FinanceUser, db: DB, client: Temporal
) -> Any:
    """Finance cancels a live attempt, with a reason (the payer's own cancel refuses finance).

    200 ``cancelled`` once the workflow gave the invoices back; 202 ``cancel_requested`` if it has not
    within a few seconds; 409 if the attempt is over or its money was accepted (even meanwhile).
    """
    try:
        outcome = await cancel_payment(client, db, user, payment_id, body.reason)
    except FinanceError as err:
        return _error(err)
    if outcome is None:
        return JSONResponse({"status": "cancel_requested", "payment_id": payment_id}, status_code=202)
    return {"status": "cancelled", "payment_id": payment_id}


@router.post("/invoices/{invoice_id}/{action}", responses=ERRORS)
async def invoice_action_api(
    invoice_id: RowIdPath, action: str, body: ReasonBody, user: FinanceUser, db: DB, request: Request
) -> Any:
    """block / unblock / cancel an invoice; a live attempt holding it is cancelled first."""
    client = await request.app.state.temporal.get()
    try:
        invoice = await invoice_action(client, db, user, invoice_id, action, body.reason)
    except FinanceError as err:
        return _error(err)
    return {"id": invoice.id, "number": invoice.number, "status": invoice.status}
