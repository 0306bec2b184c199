"""Partner callbacks: CMI's server-to-server payment result and emitters' acknowledgements.

Every call is written to ``partner_callback`` before anything else (its raw body capped at 16 KB and
hashed, web/api/callback_inbox.py; a longer body is refused with 413), then judged in this order:
every field against its rule (portnet/protocols/cmi.py, portnet/protocols/emitter.py), then the
signature, then our own state. A malformed message, a bad signature, an unknown order, a wrong
amount or a replay changes nothing but its own row, and gets a fixed answer. A genuine CMI result
goes to the workflow as an Update, because our plain-text answer (capture or not) depends on whether
the attempt still waits for its payer, and only the workflow knows that without a race.
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from portnet.db import get_engine
from portnet.models import PartnerCallback, Payment
from portnet.protocols import cmi as cmi_protocol
from portnet.protocols import emitter as emitter_protocol
from portnet.protocols.fields import PAYMENT_ID, MessageRejected, strict_form, strict_json_object
from portnet.settings import get_settings
from web.api.callback_inbox import NEVER_STORED, RawBody, read_capped
from workflows.payment import PaymentWorkflow
from workflows.types import CmiResult, EmitterAck

router = APIRouter(prefix="/api/v1/callbacks", tags=["partner callbacks"])
log = logging.getLogger("portnet.callbacks")

SIGNATURE_HEADER = emitter_protocol.SIGNATURE_HEADER


def _record(
    partner: str,
    payload: dict[str, str],
    payment_id: str | None,
    raw: RawBody | None = None,
    verdict: str = "received",
    answer: str | None = None,
) -> int:
    """Keeps the call before it is judged. Only a well-formed order id is filed as the payment's."""
    clean = {k: v for k, v in payload.items() if k.lower() not in NEVER_STORED}
    with Session(get_engine(), expire_on_commit=False) as db:
        row = PartnerCallback(
            partner=partner,
            payment_id=payment_id if payment_id and PAYMENT_ID.fullmatch(payment_id) else None,
            verdict=verdict,
            answer=answer,
            payload=json.dumps(clean, ensure_ascii=False, sort_keys=True),
            raw_body=raw.kept if raw is not None else None,
            raw_sha256=raw.sha256 if raw is not None else None,
            raw_truncated=raw.truncated if raw is not None else False,
        )
        db.add(row)
        db.commit()
        assert row.id is not None
        return row.id


async def record(
    partner: str,
    payload: dict[str, str],
    payment_id: str | None,
    raw: RawBody,
    verdict: str = "received",
    answer: str | None = None,
) -> int:
    return await run_in_threadpool(_record, partner, payload, payment_id, raw, verdict, answer)


def claimed(data: dict[str, object] | None, name: str) -> str | None:
    """The order id a message claims, to file even a rejected one under its payment (if well-formed)."""
    value = (data or {}).get(name)
    return value if isinstance(value, str) and PAYMENT_ID.fullmatch(value) else None


def as_payload(data: dict[str, object] | None) -> dict[str, str]:
    """What the ``payload`` column keeps of a parsed body: names and values as text, bounded."""
    if not data:
        return {}
    return {str(k)[:64]: str(v)[:1024] for k, v in data.items()}


def _judge(
    callback_id: int, verdict: str, answer: str | None, dedupe_key: str | None = None
) -> PartnerCallback | None:
    """Writes the verdict; with a dedupe key, returns the earlier row if this event was seen before."""
    with Session(get_engine(), expire_on_commit=False) as db:
        row = db.get(PartnerCallback, callback_id)
        assert row is not None
        if dedupe_key:
            earlier = db.exec(select(PartnerCallback).where(PartnerCallback.dedupe_key == dedupe_key)).first()
            if earlier is not None and earlier.id != callback_id:
                # A final answer is given again; "try later" (or none yet) lets this delivery take over.
                if earlier.answer is not None and earlier.verdict != "temporal_unavailable":
                    row.verdict, row.answer = "replay", earlier.answer
                    db.add(row)
                    db.commit()
                    return earlier
                # The first delivery was never answered properly: this one takes over its key.
                earlier.dedupe_key = None
                db.add(earlier)
                db.flush()
            row.dedupe_key = dedupe_key
        row.verdict, row.answer = verdict, answer
        db.add(row)
        try:
            db.commit()
        except IntegrityError:
            db.rollback()
            return _judge(callback_id, verdict, answer, dedupe_key)
    return None


async def judge(
    callback_id: int, verdict: str, answer: str | None, dedupe_key: str | None = None
) -> PartnerCallback | None:
    return await run_in_threadpool(_judge, callback_id, verdict, answer, dedupe_key)


def _payment(payment_id: str) -> Payment | None:
    with Session(get_engine(), expire_on_commit=False) as db:
        return db.get(Payment, payment_id)


async def payment_of(payment_id: str) -> Payment | None:
    return await run_in_threadpool(_payment, payment_id)


# CMI reads only its plain-text answers: a 413 is answered like any refusal, without capture.
CMI_TOO_LARGE = "FAILURE"


@router.post("/cmi", response_class=PlainTextResponse)
async def cmi_callback(request: Request) -> PlainTextResponse:
    raw = await read_capped(request)
    if raw.truncated:
        await record("cmi", {}, None, raw, "too_large", CMI_TOO_LARGE)
        return PlainTextResponse(CMI_TOO_LARGE, status_code=413)
    try:
        fields: dict[str, str] | None = strict_form(raw.received)
    except MessageRejected:
        fields = None
    oid = (fields or {}).get("oid", "")
    callback_id = await record("cmi", fields or {}, oid, raw)
    settings = get_settings()

    async def answer(verdict: str, text: str, dedupe_key: str | None = None) -> PlainTextResponse:
        earlier = await judge(callback_id, verdict, text, dedupe_key)
        if earlier is not None:
            log.info("cmi callback %s is a replay of %s", callback_id, earlier.id)
            return PlainTextResponse(earlier.answer or "APPROVED")
        log.info("cmi callback %s: %s -> %s", callback_id, verdict, text)
        return PlainTextResponse(text)

    try:
        if fields is None:
            raise MessageRejected("body", "not a form")
        callback = cmi_protocol.read_callback(fields, settings.cmi_client_id)
    except MessageRejected as rejected:
        log.info("cmi callback %s rejected: %s", callback_id, rejected)
        # Acknowledged, not captured: asking again would not make it well-formed.
        return await answer("malformed", "APPROVED")
    if not cmi_protocol.verify_hash(fields, settings.cmi_store_key):
        return await answer("bad_signature", "FAILURE")
    payment = await payment_of(callback.oid)
    if payment is None:
        return await answer("unknown_order", "APPROVED")
    if callback.amount != payment.amount:
        return await answer("amount_mismatch", "APPROVED")

    dedupe = f"cmi:{callback.oid}:{callback.trans_id}:{callback.proc_return_code}"
    earlier = await judge(callback_id, "processing", None, dedupe)
    if earlier is not None:
        return PlainTextResponse(earlier.answer or "APPROVED")

    result = CmiResult(
        callback_id=callback_id,
        approved=callback.approved,
        proc_return_code=callback.proc_return_code,
        trans_id=callback.trans_id,
        amount=callback.amount_text,
        auth_code=callback.auth_code,
        host_ref_num=callback.host_ref_num,
        masked_pan=callback.masked_pan,
        err_msg=callback.err_msg,
        transaction_date=callback.transaction_date,
    )
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        return await answer("temporal_unavailable", "FAILURE", dedupe)
    try:
        decision = await client.get_workflow_handle(payment.workflow_id).execute_update(
            PaymentWorkflow.cmi_result, result
        )
    except WorkflowUpdateFailedError:
        return await answer("rejected", "APPROVED", dedupe)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            # The attempt is over (expired or cancelled): acknowledge without capture.
            return await answer("late", "APPROVED", dedupe)
        log.warning("cmi callback %s: Temporal error %s", callback_id, err.status)
        return await answer("temporal_unavailable", "FAILURE", dedupe)
    verdict = (
        "accepted"
        if decision.answer.startswith("ACTION=POSTAUTH")
        else "declined"
        if not result.approved
        else "not_captured"
    )
    return await answer(verdict, decision.answer, dedupe)


# Fixed answers: nothing the caller sent is echoed, nothing is signed.
TOO_LARGE = {"detail": "Corps de message trop volumineux."}
MALFORMED = {"detail": "Message invalide."}
BAD_SIGNATURE = {"detail": "Signature invalide."}


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
    earlier = await judge(callback_id, "processing", None, dedupe)
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
            await judge(callback_id, "late", "200", dedupe)
            return JSONResponse({"status": "late"})
        await judge(callback_id, "temporal_unavailable", "503", dedupe)
        return JSONResponse({"detail": "Réessayez plus tard."}, status_code=503)
    await judge(callback_id, "accepted", "200", dedupe)
    return JSONResponse({"status": "acknowledged"})
