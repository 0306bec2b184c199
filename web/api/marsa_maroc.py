"""MARSA MAROC invoice requests: terminals, start a request, follow it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import Field

from portnet.i18n import N_
from web import marsa
from web.api.schemas import ApiModel, InvoiceOut
from web.deps import DB, AppSettings, CurrentUser, Temporal, company_scope

router = APIRouter(prefix="/api/v1/marsa-maroc", tags=["marsa maroc"])


class MarsaRequestIn(ApiModel):
    terminal: str = Field(max_length=20)
    customer_id: str | None = Field(default=None, max_length=40)
    invoice_number: str | None = Field(default=None, max_length=40)


@router.get("/terminals")
def list_terminals(user: CurrentUser, settings: AppSettings) -> dict[str, Any]:
    return {"terminals": [{"code": c, "name": n} for c, n in marsa.terminals(settings)]}


@router.post("/requests", status_code=202)
async def create_request(
    body: MarsaRequestIn, user: CurrentUser, db: DB, settings: AppSettings, client: Temporal
) -> JSONResponse:
    try:
        request_id = await marsa.start_request(
            client, settings, db, user, body.terminal, body.customer_id, body.invoice_number
        )
    except marsa.RequestRefused as refused:
        raise HTTPException(status_code=refused.status_code, detail=refused.message) from None
    return JSONResponse({"id": request_id, "status": "running"}, status_code=202)


@router.get("/requests/{request_id}")
async def get_request(request_id: str, user: CurrentUser, db: DB, client: Temporal) -> dict[str, Any]:
    view = await marsa.read_request(client, request_id, user)
    if view is None:
        raise HTTPException(status_code=404, detail=N_("Demande introuvable."))
    invoices = marsa.invoices_of(db, view, company_scope(user)) if view.status == "completed" else []
    return {
        "id": view.request_id,
        "status": view.status,
        "terminal": view.terminal,
        "progress": {
            "percent": marsa.percent(view),
            "pages_done": view.pages_done,
            "pages_total": view.pages_total,
            "received": view.received,
            "created": view.created,
            "updated": view.updated,
            "kept": view.kept,
        },
        "error": view.error,
        "error_code": view.error_code,
        "invoices": [InvoiceOut.of(r).model_dump(mode="json") for r in invoices],
    }
