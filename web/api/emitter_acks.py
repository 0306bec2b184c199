"""Emitters' acknowledgements of our signed settlement notices (ANP, MARSA MAROC, Bureau Veritas...).

Kept and judged through the callback inbox (web/callback_inbox.py) like a channel's callback: every
field against its rule (portnet/protocols/emitter.py), then the signature, then our state; a genuine
acknowledgement is signalled to the payment's workflow, which then marks the invoices paid; once
that workflow is over (an acknowledgement after its wait), the ledger marks them paid itself.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.emitters import apply_late_acknowledgement
from portnet.protocols import emitter as emitter_protocol
from portnet.protocols.fields import MessageRejected, strict_json_object
from portnet.settings import get_settings
from web.callback_inbox import (
    BAD_SIGNATURE,
    MALFORMED,
    TOO_LARGE,
    CallbackInFlight,
    as_payload,
    judge,
    payment_of,
    read_capped,
    record,
)
from workflows.payment import PaymentWorkflow
from workflows.types import EmitterAck

router = APIRouter(prefix="/api/v1/callbacks", tags=["partner callbacks"])
log = logging.getLogger("portnet.callbacks")

SIGNATURE_HEADER = emitter_protocol.SIGNATURE_HEADER


@router.post("/emitters/ack")
async def emitter_ack(request: Request) -> JSONResponse:
    raw = await read_capped(request)
    if raw.truncated:
        await record("emitter", {}, None, raw, "too_large", "413")
        return JSONResponse(TOO_LARGE, status_code=413)
    settings = get_settings()
    data: dict[str, object] | None = None
    ack: emitter_protocol.Ack | None = None
    try:
        data = strict_json_object(raw.received)
        ack = emitter_protocol.read_ack(data)
    except MessageRejected as rejected:
        log.info("emitter ack rejected: %s", rejected)
    notice = (data or {}).get("notice_id")
    claimed_id = notice.partition("-")[0] if isinstance(notice, str) else None
    callback_id = await record("emitter", as_payload(data), claimed_id, raw)
    if ack is None:
        await judge(callback_id, "malformed", "400")
        return JSONResponse(MALFORMED, status_code=400)
    if not emitter_protocol.verify(
        settings.emitter_shared_key,
        emitter_protocol.Message.ACK,
        raw.received,
        request.headers.get(SIGNATURE_HEADER),
    ):
        await judge(callback_id, "bad_signature", "401")
        return JSONResponse(BAD_SIGNATURE, status_code=401)
    payment = await payment_of(ack.payment_id)
    if payment is None:
        await judge(callback_id, "unknown_order", "404")
        return JSONResponse({"detail": "Avis inconnu."}, status_code=404)
    dedupe = f"emitter:{ack.notice_id}"
    try:
        earlier = await judge(callback_id, "processing", None, dedupe)
    except CallbackInFlight:
        return JSONResponse({"detail": "Réessayez plus tard."}, status_code=503)
    if earlier is not None:
        return JSONResponse({"status": "already_acknowledged"})
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        await judge(callback_id, "temporal_unavailable", "503", dedupe)
        return JSONResponse({"detail": "Réessayez plus tard."}, status_code=503)
    signal = EmitterAck(
        emitter_code=ack.emitter_code,
        notice_id=ack.notice_id,
        emitter_ack_id=ack.emitter_ack_id,
        callback_id=callback_id,
    )
    try:
        await client.get_workflow_handle(payment.workflow_id).signal(
            PaymentWorkflow.emitter_acknowledged, signal
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            # The workflow is over (its wait for acknowledgements ended): the ledger applies it.
            applied = await run_in_threadpool(
                apply_late_acknowledgement, ack.payment_id, ack.emitter_code, ack.emitter_ack_id
            )
            if applied:
                await judge(callback_id, "accepted_late", "200", dedupe)
                return JSONResponse({"status": "acknowledged"})
            await judge(callback_id, "late", "200", dedupe)
            return JSONResponse({"status": "late"})
        await judge(callback_id, "temporal_unavailable", "503", dedupe)
        return JSONResponse({"detail": "Réessayez plus tard."}, status_code=503)
    await judge(callback_id, "accepted", "200", dedupe)
    return JSONResponse({"status": "acknowledged"})
