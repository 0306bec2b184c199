"""Amanpay and PayDirect on the API: the SMS code, its resend, and Amanpay's signed notifications.

Notifications follow the CMI callback's rules (web/api/callbacks.py): stored first, verified
(HMAC-SHA256 of the raw body, constant-time), deduplicated on Amanpay's event id, then given to the
workflow as an Update. A ``paid`` notification the workflow does not take (the code expired, the
attempt is over) is recorded as an unapplied payment for finance: money is never dropped.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from portnet import amanpay_protocol
from portnet.db import get_engine
from portnet.models import Payment, UnappliedPayment
from portnet.money import api_amount, to_money
from portnet.settings import get_settings
from web.amanpay import ChannelRefused, resend_sms_code, submit_sms_code
from web.api.callbacks import _judge, _payment, _record
from web.api.schemas import ApiModel, ErrorOut, PaymentOut
from web.deps import DB, AppSettings, CurrentUser, Temporal
from web.limits import PaymentIdPath
from web.payments import PaymentRefused, payer_payment, read_view
from workflows.payment import PaymentWorkflow
from workflows.types import AmanpayNotice

router = APIRouter(tags=["payments"])
log = logging.getLogger("portnet.amanpay")


class SmsCodeBody(ApiModel):
    code: str = Field(max_length=20)


def _error(refused: ChannelRefused) -> JSONResponse:
    body: dict[str, object] = {"detail": refused.message, "code": refused.code}
    headers = {}
    if refused.attempts_left is not None:
        body["attempts_left"] = refused.attempts_left
    if refused.retry_after is not None:
        body["retry_after"] = refused.retry_after
        headers["Retry-After"] = str(refused.retry_after)
    return JSONResponse(body, status_code=refused.status_code, headers=headers)


@router.post(
    "/api/v1/payments/{payment_id}/sms-code",
    response_model=PaymentOut,
    responses={c: {"model": ErrorOut} for c in (403, 404, 409, 422, 503)},
)
async def sms_code(
    payment_id: PaymentIdPath,
    body: SmsCodeBody,
    user: CurrentUser,
    db: DB,
    settings: AppSettings,
    client: Temporal,
) -> PaymentOut | JSONResponse:
    try:
        payment = payer_payment(db, user, payment_id)
    except PaymentRefused as refused:
        return _error(ChannelRefused(refused.status_code, refused.message, refused.code))
    db.close()  # not held while Temporal answers
    try:
        await submit_sms_code(client, settings, payment.workflow_id, payment.id, body.code)
    except ChannelRefused as refused:
        return _error(refused)
    return PaymentOut.of(await read_view(client, payment))


@router.post(
    "/api/v1/payments/{payment_id}/sms-code/resend",
    status_code=202,
    response_model=None,
    responses={c: {"model": ErrorOut} for c in (403, 404, 409, 429, 503)},
)
async def sms_code_resend(
    payment_id: PaymentIdPath, user: CurrentUser, db: DB, client: Temporal
) -> dict[str, object] | JSONResponse:
    try:
        payment = payer_payment(db, user, payment_id)
    except PaymentRefused as refused:
        return _error(ChannelRefused(refused.status_code, refused.message, refused.code))
    db.close()  # not held while Temporal answers
    try:
        outcome = await resend_sms_code(client, payment.workflow_id)
    except ChannelRefused as refused:
        return _error(refused)
    return {"status": "sent", "expires_at": outcome.expires_at, "resends_left": outcome.resends_left}


def record_unapplied(payment: Payment, data: dict[str, str], callback_id: int, reason: str) -> None:
    reference = f"amanpay:{data.get('transaction_id') or data.get('event_id')}"
    paid_at = None
    try:
        paid_at = (
            datetime.fromisoformat(data["paid_at"]).replace(tzinfo=None) if data.get("paid_at") else None
        )
    except ValueError:
        paid_at = None
    with Session(get_engine()) as db:
        if db.exec(select(UnappliedPayment).where(UnappliedPayment.transaction_number == reference)).first():
            return
        db.add(
            UnappliedPayment(
                partner="amanpay",
                transaction_number=reference,
                payment_id=payment.id,
                channel=payment.channel,
                amount=to_money(data.get("amount") or "0"),
                reason=reason,
                callback_id=callback_id,
                paid_at=paid_at,
            )
        )
        try:
            db.commit()
        except IntegrityError:
            db.rollback()
    log.warning("amanpay payment %s for %s recorded as unapplied: %s", reference, payment.id, reason)


@router.post("/api/v1/callbacks/amanpay", tags=["partner callbacks"])
async def amanpay_callback(request: Request) -> JSONResponse:
    raw = await request.body()
    try:
        data = {k: str(v) for k, v in json.loads(raw).items()}
    except (ValueError, AttributeError):
        data = {"raw": raw.decode(errors="replace")[:2000]}
    order_id = data.get("order_id") or None
    callback_id = _record("amanpay", data, order_id)
    settings = get_settings()

    def answer(verdict: str, status: int, body: dict[str, str], dedupe: str | None = None) -> JSONResponse:
        earlier = _judge(callback_id, verdict, str(status), dedupe)
        if earlier is not None:
            return JSONResponse({"status": "already_processed"})
        log.info("amanpay notification %s for %s: %s", callback_id, order_id, verdict)
        return JSONResponse(body, status_code=status)

    if not amanpay_protocol.verify(
        settings.amanpay_secret_key, raw, request.headers.get("X-Amanpay-Signature", "")
    ):
        return answer("bad_signature", 401, {"detail": "Signature invalide."})
    payment = _payment(order_id) if order_id else None
    if payment is None:
        return answer("unknown_order", 404, {"detail": "Commande inconnue."})
    try:
        amount = api_amount(data.get("amount", ""))  # type: ignore[arg-type]
    except ValueError:
        amount = ""
    if amount != api_amount(payment.amount):
        return answer("amount_mismatch", 422, {"detail": "Montant différent de la commande."})
    dedupe = f"amanpay:{data.get('event_id', '')}"
    earlier = _judge(callback_id, "processing", None, dedupe)
    if earlier is not None:
        return JSONResponse({"status": "already_processed"})
    notice = AmanpayNotice(
        callback_id=callback_id,
        event_id=data.get("event_id", ""),
        status=data.get("status", ""),
        amount=amount,
        transaction_id=data.get("transaction_id", ""),
        channel=data.get("channel", ""),
        reason=data.get("reason", ""),
    )
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        return answer("temporal_unavailable", 503, {"detail": "Réessayez plus tard."}, dedupe)
    try:
        decision = await client.get_workflow_handle(payment.workflow_id).execute_update(
            PaymentWorkflow.amanpay_result, notice
        )
        accepted, reason = decision.accepted, decision.reason
    except WorkflowUpdateFailedError as err:
        accepted, reason = False, str(err.cause or err)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            return answer("temporal_unavailable", 503, {"detail": "Réessayez plus tard."}, dedupe)
        accepted, reason = False, "attempt is over"
    if accepted:
        return answer("accepted", 200, {"status": "accepted"}, dedupe)
    if notice.status == "paid":
        log.info("amanpay paid notice for %s not taken by the workflow: %s", payment.id, reason)
        record_unapplied(
            payment,
            data,
            callback_id,
            "Paiement notifié après l'expiration du code ou la clôture de la tentative",
        )
        return answer("unapplied", 200, {"status": "unapplied"}, dedupe)
    return answer("late", 200, {"status": "ignored"}, dedupe)
