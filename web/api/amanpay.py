"""Amanpay and PayDirect on the API: the SMS code, its resend, and Amanpay's signed notifications.

Notifications follow the CMI callback's rules (web/api/callbacks.py): stored first (raw body capped
at 16 KB and hashed; a longer one gets 413), every field checked (portnet/protocols/amanpay.py), then
verified (HMAC-SHA256 over the message label and the raw body, constant-time), deduplicated on
Amanpay's event id, then given to the workflow as an Update. A genuine ``paid`` notification the
workflow does not take (the code expired, the attempt is over) or whose order we do not know is
recorded as an unapplied payment for finance: money is never dropped.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from portnet import unapplied
from portnet.models import Payment
from portnet.protocols import amanpay as amanpay_protocol
from portnet.protocols.fields import MessageRejected, strict_json_object
from portnet.settings import get_settings
from portnet.statuses import Channel
from web.amanpay import ChannelRefused, resend_sms_code, submit_sms_code
from web.api.callback_inbox import read_capped
from web.api.callbacks import (
    BAD_SIGNATURE,
    MALFORMED,
    TOO_LARGE,
    as_payload,
    claimed,
    judge,
    payment_of,
    record,
)
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


def record_unapplied(
    payment: Payment | None, notice: amanpay_protocol.Notification, callback_id: int, reason: str
) -> None:
    """One row per Amanpay transaction, on the attempt's channel (or where Amanpay says it was paid)."""
    channel = (
        Channel(payment.channel)
        if payment is not None
        else unapplied.AMANPAY_NOTICE_CHANNELS.get(notice.channel, Channel.AMANPAY_CODE)
    )
    unapplied.keep(
        unapplied.UnappliedMoney(
            channel=channel,
            transaction_number=f"amanpay:{notice.transaction_id or notice.event_id}",
            amount=notice.amount,
            reason=reason,
            callback_id=callback_id,
            payment_id=payment.id if payment is not None else None,
            paid_at=unapplied.naive_utc(notice.paid_at),
        )
    )


@router.post("/api/v1/callbacks/amanpay", tags=["partner callbacks"])
async def amanpay_callback(request: Request) -> JSONResponse:
    raw = await read_capped(request)
    if raw.truncated:
        await record("amanpay", {}, None, raw, "too_large", "413")
        return JSONResponse(TOO_LARGE, status_code=413)
    settings = get_settings()
    data: dict[str, object] | None = None
    notice: amanpay_protocol.Notification | None = None
    try:
        data = strict_json_object(raw.received)
        notice = amanpay_protocol.read_notification(data, settings.amanpay_merchant_id)
    except MessageRejected as rejected:
        log.info("amanpay notification rejected: %s", rejected)
    callback_id = await record("amanpay", as_payload(data), claimed(data, "order_id"), raw)

    async def answer(
        verdict: str, status: int, body: dict[str, str], dedupe: str | None = None
    ) -> JSONResponse:
        earlier = await judge(callback_id, verdict, str(status), dedupe)
        if earlier is not None:
            return JSONResponse({"status": "already_processed"})
        log.info("amanpay notification %s: %s", callback_id, verdict)
        return JSONResponse(body, status_code=status)

    if notice is None:
        return await answer("malformed", 400, MALFORMED)
    if not amanpay_protocol.verify(
        settings.amanpay_secret_key,
        amanpay_protocol.Message.NOTIFICATION,
        raw.received,
        request.headers.get(amanpay_protocol.AMANPAY_HEADER),
    ):
        return await answer("bad_signature", 401, BAD_SIGNATURE)
    payment = await payment_of(notice.order_id)
    if payment is None:
        if notice.status != "paid":
            return await answer("unknown_order", 404, {"detail": "Commande inconnue."})
        dedupe = f"amanpay:{notice.event_id}"
        if await judge(callback_id, "processing", None, dedupe) is not None:
            return JSONResponse({"status": "already_processed"})
        await run_in_threadpool(
            record_unapplied, None, notice, callback_id, "Paiement notifié pour une commande inconnue"
        )
        return await answer("unapplied", 200, {"status": "unapplied"}, dedupe)
    if notice.amount != payment.amount:
        return await answer("amount_mismatch", 422, {"detail": "Montant différent de la commande."})
    dedupe = f"amanpay:{notice.event_id}"
    earlier = await judge(callback_id, "processing", None, dedupe)
    if earlier is not None:
        return JSONResponse({"status": "already_processed"})
    update = AmanpayNotice(
        callback_id=callback_id,
        event_id=notice.event_id,
        status=notice.status,
        amount=notice.amount_text,
        transaction_id=notice.transaction_id,
        channel=notice.channel,
        reason=notice.reason,
    )
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        return await answer("temporal_unavailable", 503, {"detail": "Réessayez plus tard."}, dedupe)
    try:
        decision = await client.get_workflow_handle(payment.workflow_id).execute_update(
            PaymentWorkflow.amanpay_result, update
        )
        accepted, reason = decision.accepted, decision.reason
    except WorkflowUpdateFailedError as err:
        accepted, reason = False, str(err.cause or err)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            return await answer("temporal_unavailable", 503, {"detail": "Réessayez plus tard."}, dedupe)
        accepted, reason = False, "attempt is over"
    if accepted:
        return await answer("accepted", 200, {"status": "accepted"}, dedupe)
    if notice.status == "paid":
        log.info("amanpay paid notice for %s not taken by the workflow: %s", payment.id, reason)
        await run_in_threadpool(
            record_unapplied,
            payment,
            notice,
            callback_id,
            "Paiement notifié après l'expiration du code ou la clôture de la tentative",
        )
        return await answer("unapplied", 200, {"status": "unapplied"}, dedupe)
    return await answer("late", 200, {"status": "ignored"}, dedupe)
