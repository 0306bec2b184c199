"""Payment attempts: start one, read it (from the workflow), cancel it, fetch its receipt."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import select

from portnet.models import Document
from web.api.schemas import ErrorOut, PaymentBody, PaymentOut
from web.attempts import PaymentRefused, payer_payment, payment_for_user, read_view
from web.deps import DB, AppSettings, CurrentUser, Temporal
from web.limits import PaymentIdPath
from web.payments import request_cancel, start_payment

router = APIRouter(prefix="/api/v1/payments", tags=["payments"])

ERRORS = {code: {"model": ErrorOut} for code in (403, 404, 409, 422, 503)}


@router.post("", status_code=201, response_model=PaymentOut, responses=ERRORS)  # type: ignore[arg-type]
async def create_payment(
    body: PaymentBody, user: CurrentUser, db: DB, settings: AppSettings, client: Temporal
) -> PaymentOut | JSONResponse:
    try:
        view = await start_payment(
            client, db, settings, user, body.invoice_ids, body.channel, body.payer, body.declaration
        )
    except PaymentRefused as refused:
        return JSONResponse(
            {"detail": refused.message, "code": refused.code}, status_code=refused.status_code
        )
    return PaymentOut.of(view)


def refusal(refused: PaymentRefused) -> JSONResponse:
    return JSONResponse({"detail": refused.message, "code": refused.code}, status_code=refused.status_code)


@router.get("/{payment_id}", response_model=PaymentOut, responses={404: {"model": ErrorOut}})
async def get_payment(payment_id: PaymentIdPath, user: CurrentUser, db: DB, request: Request) -> PaymentOut:
    payment = payment_for_user(db, user, payment_id)
    if payment is None:
        raise HTTPException(status_code=404, detail="Paiement introuvable.")
    client = await request.app.state.temporal.get()
    db.close()  # not held while the workflow is queried; the ledger fallback opens a new one
    return PaymentOut.of(await read_view(client, payment, db))


@router.post(
    "/{payment_id}/cancel",
    status_code=202,
    response_model=None,
    responses={c: {"model": ErrorOut} for c in (403, 404, 409, 503)},
)
async def cancel_payment(
    payment_id: PaymentIdPath, user: CurrentUser, db: DB, client: Temporal
) -> dict[str, str] | JSONResponse:
    """The payer withdraws a live attempt; 409 once it is over or its money accepted."""
    try:
        payment = payer_payment(db, user, payment_id)
        db.close()  # not held while Temporal answers
        await request_cancel(client, payment, f"Annulé par {user.username}")
    except PaymentRefused as refused:
        return refusal(refused)
    return {"status": "cancel_requested"}


@router.get(
    "/{payment_id}/receipt",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, 404: {"model": ErrorOut}},
)
def receipt(payment_id: PaymentIdPath, user: CurrentUser, db: DB) -> Response:
    payment = payment_for_user(db, user, payment_id)
    if payment is None:
        raise HTTPException(status_code=404, detail="Paiement introuvable.")
    doc = db.exec(
        select(Document).where(Document.payment_id == payment.id, Document.kind == "receipt")
    ).first()
    if doc is None or doc.content is None:
        raise HTTPException(status_code=404, detail="Reçu disponible une fois le paiement réussi.")
    return Response(
        doc.content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{doc.name}"'},
    )
