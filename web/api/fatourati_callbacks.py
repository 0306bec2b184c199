"""CMI Fatourati's calls to us: the payment callback and the token status check.

The callback is stored first (``partner_callback``), then judged: a bad signature or a wrong amount
changes nothing but its own row; a duplicate (same Fatourati transaction number) gets the first
answer again. A genuine payment goes to the workflow as an Update, which alone decides whether it
still counts. Money that no longer can (the deadline passed, the reference was already paid, the
attempt was cancelled) becomes an ``unapplied_payment`` for finance: never dropped, never applied.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal, InvalidOperation

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from portnet import fatourati_protocol as proto
from portnet.db import get_engine
from portnet.models import Payment, PaymentChannelData, UnappliedPayment
from portnet.settings import get_settings
from portnet.statuses import PaymentStatus
from web.api.callbacks import _judge, _record
from workflows.payment import PaymentWorkflow
from workflows.types import FatouratiDecision, FatouratiResult

router = APIRouter(prefix="/api/v1/callbacks/fatourati", tags=["partner callbacks"])
log = logging.getLogger("portnet.callbacks.fatourati")


def _find(order_id: str, reference: str) -> tuple[Payment | None, PaymentChannelData | None]:
    with Session(get_engine(), expire_on_commit=False) as db:
        data = db.exec(
            select(PaymentChannelData).where(PaymentChannelData.partner_reference == reference)
        ).first()
        payment = db.get(Payment, order_id) if order_id else None
        if data is not None and payment is not None and data.payment_id != payment.id:
            return None, None
        if payment is None and data is not None:
            payment = db.get(Payment, data.payment_id)
        return payment, data


def keep_unapplied(
    callback_id: int, fields: dict[str, str], payment_id: str | None, amount: Decimal, reason: str
) -> int:
    """One row per Fatourati transaction; a redelivery finds the row already there."""
    txn = fields.get("transactionNumber", "")
    with Session(get_engine(), expire_on_commit=False) as db:
        row = db.exec(select(UnappliedPayment).where(UnappliedPayment.transaction_number == txn)).first()
        if row is None:
            row = UnappliedPayment(
                partner="fatourati",
                transaction_number=txn,
                partner_reference=fields.get("tokenRef") or None,
                payment_id=payment_id,
                callback_id=callback_id,
                amount=amount,
                reason=reason,
            )
            db.add(row)
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
                row = db.exec(
                    select(UnappliedPayment).where(UnappliedPayment.transaction_number == txn)
                ).one()
        assert row.id is not None
        return row.id


def unapplied_receipt(unapplied_id: int) -> str:
    return f"ENC-{unapplied_id:08d}"


def _answer(fields: dict[str, str], status: str, receipt: str | None, http: int = 200) -> JSONResponse:
    settings = get_settings()
    body: dict[str, object] = {
        "tokenRef": fields.get("tokenRef", ""),
        "orderId": fields.get("orderId", ""),
        "transactionNumber": fields.get("transactionNumber", ""),
        "receiptNumber": receipt or "",
    }
    body = proto.signed(body, proto.CALLBACK_ANSWER, settings.fatourati_api_key)
    body["status"] = status
    return JSONResponse(body, status_code=http)


@router.post("")
async def fatourati_callback(request: Request) -> JSONResponse:
    settings = get_settings()
    try:
        raw = await request.json()
        fields = {k: str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    except ValueError:
        fields = {}
    order_id = fields.get("orderId", "")
    callback_id = _record("fatourati", fields, order_id or None)

    def done(verdict: str, status: str, receipt: str | None, http: int = 200, dedupe: str | None = None):  # type: ignore[no-untyped-def]
        response = _answer(fields, status, receipt, http)
        earlier = _judge(callback_id, verdict, bytes(response.body).decode(), dedupe)
        if earlier is not None and earlier.answer:
            return JSONResponse(json.loads(earlier.answer))
        log.info("fatourati callback %s for %s: %s -> %s", callback_id, order_id, verdict, status)
        return response

    if not fields or not proto.verify(fields, proto.CALLBACK, settings.fatourati_api_key):
        return done("bad_signature", "REJECTED", None, 401)
    if fields.get("merchantCode") != settings.fatourati_merchant_code:
        return done("unknown_order", "REJECTED", None, 403)
    try:
        amount = Decimal(fields.get("totalAmount", "")).quantize(Decimal("0.01"))
    except InvalidOperation:
        return done("amount_mismatch", "REJECTED", None, 422)
    txn = fields.get("transactionNumber", "")
    decision_code = fields.get("decisionCode", "")
    dedupe = f"fatourati:{txn}:{decision_code}"
    earlier = _judge(callback_id, "processing", None, dedupe)
    if earlier is not None and earlier.answer:
        return JSONResponse(json.loads(earlier.answer))

    payment, _data = _find(order_id, fields.get("tokenRef", ""))
    paid = decision_code == "0"
    if payment is None:
        if not paid:
            return done("unknown_order", "RECORDED", None, 200, dedupe)
        unapplied = keep_unapplied(callback_id, fields, None, amount, "Référence ou commande inconnue")
        return done("unapplied", "RECEIVED_UNAPPLIED", unapplied_receipt(unapplied), 200, dedupe)
    if amount != payment.amount:
        # The wrong amount changes nothing; CMI's own checks make it a forgery or an error to look at.
        return done("amount_mismatch", "REJECTED", None, 422, dedupe)

    result = FatouratiResult(
        callback_id=callback_id,
        transaction_number=txn,
        decision_code=decision_code,
        amount=f"{amount:.2f}",
        channel=fields.get("channel", ""),
        transaction_date=fields.get("transactionDate") or None,
    )
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        return done("temporal_unavailable", "RETRY", None, 503, dedupe)
    decision: FatouratiDecision
    try:
        decision = await client.get_workflow_handle(payment.workflow_id).execute_update(
            PaymentWorkflow.fatourati_result, result
        )
    except (WorkflowUpdateFailedError, RPCError) as err:
        if isinstance(err, RPCError) and err.status not in (
            RPCStatusCode.NOT_FOUND,
            RPCStatusCode.FAILED_PRECONDITION,
        ):
            log.warning("fatourati callback %s: Temporal error %s", callback_id, err.status)
            return done("temporal_unavailable", "RETRY", None, 503, dedupe)
        # The attempt is closed (expired, cancelled, settled long ago): nothing to decide any more.
        decision = FatouratiDecision("unapplied", f"attempt closed ({payment.status})")
    if decision.outcome in ("accepted", "duplicate"):
        return done(
            "accepted" if decision.outcome == "accepted" else "replay",
            "ACCEPTED",
            decision.receipt_number,
            200,
            dedupe,
        )
    if decision.outcome == "refused":
        return done("declined", "RECORDED", None, 200, dedupe)
    if decision.outcome == "amount_mismatch":
        return done("amount_mismatch", "REJECTED", None, 422, dedupe)
    if not paid:
        return done("late", "RECORDED", None, 200, dedupe)
    reason = {
        PaymentStatus.SUCCEEDED.value: "Référence déjà payée (paiement en double)",
    }.get(payment.status, "Paiement reçu après l'échéance de la référence")
    unapplied = keep_unapplied(callback_id, fields, payment.id, amount, f"{reason} ({decision.reason})")
    return done("unapplied", "RECEIVED_UNAPPLIED", unapplied_receipt(unapplied), 200, dedupe)


STATUS_OF_PAYMENT = {
    PaymentStatus.SUCCEEDED.value: "PAID",
    PaymentStatus.EXPIRED.value: "EXPIRED",
    PaymentStatus.FAILED.value: "EXPIRED",
    PaymentStatus.CANCELLED.value: "CANCELLED",
}


@router.post("/status")
async def check_status(request: Request) -> JSONResponse:
    """CMI asks for a token's status; we answer from our state (the ledger the workflow keeps)."""
    settings = get_settings()
    try:
        raw = await request.json()
        fields = {k: str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    except ValueError:
        fields = {}
    reference = fields.get("tokenRef", "")
    if not proto.verify(fields, proto.STATUS_REQUEST, settings.fatourati_api_key):
        return JSONResponse({"error": "bad_signature"}, status_code=401)
    payment, data = _find("", reference)
    if payment is None or data is None:
        status = "NOT_FOUND"
    else:
        status = STATUS_OF_PAYMENT.get(payment.status, "PENDING")
    body: dict[str, object] = {"tokenRef": reference, "status": status}
    return JSONResponse(proto.signed(body, proto.STATUS_ANSWER, settings.fatourati_api_key))
