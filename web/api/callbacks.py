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

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from portnet import metrics
from portnet.db import get_engine
from portnet.models import PartnerCallback, Payment, utcnow
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
    if verdict != "received":  # judged on arrival (too large): no later verdict will be written
        metrics.callback_verdict(partner, verdict)
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


# A delivery that finds the same event being processed by another waits this long for its answer
# (CMI gives up on a callback after 10 s), then is answered "try later" so that the partner retries.
IN_FLIGHT_WAIT_SECONDS = 7.0
IN_FLIGHT_POLL_SECONDS = 0.1
# A "processing" row older than this was left by a process that died mid-way: the event is free again.
STALE_PROCESSING = timedelta(minutes=2)
# Verdicts that are not an answer to the partner: the event may be taken over by its next delivery.
RETRYABLE = frozenset({"temporal_unavailable", "in_flight"})


class CallbackInFlight(Exception):
    """The same partner event is being processed by another delivery and did not finish in time."""


@dataclass(frozen=True)
class _Claim:
    owner: bool  # this delivery now holds the event's key and must process it
    earlier: PartnerCallback | None = None  # the delivery that answered it already (a replay)


def _claim(callback_id: int, dedupe_key: str) -> _Claim | None:
    """One attempt at holding ``dedupe_key`` for this delivery; ``None`` while another processes it.

    Each transaction locks at most one row besides its own and always the holder's first, so that
    concurrent deliveries of one event cannot deadlock (two of them used to take the key from each
    other, each locking the other's row, on PostgreSQL).
    """
    with Session(get_engine(), expire_on_commit=False) as db:
        holder = db.exec(select(PartnerCallback).where(PartnerCallback.dedupe_key == dedupe_key)).first()
        if holder is not None and holder.id == callback_id:
            return _Claim(owner=True)
        if holder is not None:
            if holder.answer is not None and holder.verdict not in RETRYABLE:
                row = db.get(PartnerCallback, callback_id)
                assert row is not None
                row.verdict, row.answer = "replay", holder.answer
                db.add(row)
                db.commit()
                metrics.callback_verdict(row.partner, "replay")
                return _Claim(owner=False, earlier=holder)
            stale = holder.answer is None and holder.received_at < utcnow() - STALE_PROCESSING
            if holder.verdict not in RETRYABLE and not stale:
                return None
            # Never answered for good: this delivery takes the event over, if nobody did meanwhile.
            released: CursorResult[Any] = db.execute(  # type: ignore[assignment]
                update(PartnerCallback)
                .where(col(PartnerCallback.id) == holder.id, col(PartnerCallback.dedupe_key) == dedupe_key)
                .values(dedupe_key=None)
            )
            if released.rowcount != 1:
                db.rollback()
                return None
        try:
            db.execute(
                update(PartnerCallback)
                .where(col(PartnerCallback.id) == callback_id)
                .values(dedupe_key=dedupe_key, verdict="processing", answer=None)
            )
            db.commit()
        except IntegrityError:
            db.rollback()  # another delivery claimed it first
            return None
    return _Claim(owner=True)


async def claim(callback_id: int, dedupe_key: str) -> PartnerCallback | None:
    """Makes this delivery the one that processes the event, or returns the earlier answered one.

    While another delivery of the same event is processing it, waits for its answer (a replay) or
    for it to give up (then takes over); raises ``CallbackInFlight`` past ``IN_FLIGHT_WAIT_SECONDS``.
    """
    deadline = asyncio.get_running_loop().time() + IN_FLIGHT_WAIT_SECONDS
    while True:
        outcome = await run_in_threadpool(_claim, callback_id, dedupe_key)
        if outcome is not None:
            return outcome.earlier
        if asyncio.get_running_loop().time() >= deadline:
            await run_in_threadpool(_finish, callback_id, "in_flight", None)
            raise CallbackInFlight(dedupe_key)
        await asyncio.sleep(IN_FLIGHT_POLL_SECONDS)


def _finish(callback_id: int, verdict: str, answer: str | None) -> None:
    """Writes this delivery's verdict and answer; touches no other row."""
    with Session(get_engine()) as db:
        partner = db.execute(
            update(PartnerCallback)
            .where(col(PartnerCallback.id) == callback_id)
            .values(verdict=verdict, answer=answer)
            .returning(col(PartnerCallback.partner))
        ).scalar_one_or_none()
        db.commit()
    metrics.callback_verdict(partner or "unknown", verdict)


async def judge(
    callback_id: int, verdict: str, answer: str | None, dedupe_key: str | None = None
) -> PartnerCallback | None:
    """Records a verdict; ``processing`` with a dedupe key claims the event (see ``claim``).

    Returns the earlier delivery that already answered the same event, whose answer is given again.
    """
    if verdict == "processing" and dedupe_key:
        return await claim(callback_id, dedupe_key)
    await run_in_threadpool(_finish, callback_id, verdict, answer)
    return None


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
    try:
        earlier = await judge(callback_id, "processing", None, dedupe)
    except CallbackInFlight:
        return PlainTextResponse("FAILURE")  # CMI retries; the delivery in flight decides
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
            await judge(callback_id, "late", "200", dedupe)
            return JSONResponse({"status": "late"})
        await judge(callback_id, "temporal_unavailable", "503", dedupe)
        return JSONResponse({"detail": "Réessayez plus tard."}, status_code=503)
    await judge(callback_id, "accepted", "200", dedupe)
    return JSONResponse({"status": "acknowledged"})
