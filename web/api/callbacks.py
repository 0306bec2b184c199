"""Partner callbacks: CMI's server-to-server payment result and emitters' acknowledgements.

Every call is written to ``partner_callback`` before anything else, then judged: a bad signature, an
unknown order, a wrong amount or a replay changes nothing but its own row. A genuine CMI result goes
to the workflow as an Update, because our plain-text answer (capture or not) depends on whether the
attempt still waits for its payer, and only the workflow knows that without a race.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from portnet import cmi_protocol
from portnet.db import get_engine
from portnet.models import PartnerCallback, Payment
from portnet.money import api_amount
from portnet.settings import get_settings
from workflows.payment import PaymentWorkflow
from workflows.types import CmiResult, EmitterAck

router = APIRouter(prefix="/api/v1/callbacks", tags=["partner callbacks"])
log = logging.getLogger("portnet.callbacks")

SIGNATURE_HEADER = "X-PortNet-Signature"
# Fields that identify the payer's card or secrets and are never kept, even if a partner sent them.
NEVER_STORED = {"pan", "cv2", "cvv", "ecom_payment_card_expdate_month", "ecom_payment_card_expdate_year"}


def _record(partner: str, payload: dict[str, str], payment_id: str | None) -> int:
    clean = {k: v for k, v in payload.items() if k.lower() not in NEVER_STORED}
    with Session(get_engine(), expire_on_commit=False) as db:
        row = PartnerCallback(
            partner=partner,
            payment_id=payment_id,
            verdict="received",
            payload=json.dumps(clean, ensure_ascii=False, sort_keys=True),
        )
        db.add(row)
        db.commit()
        assert row.id is not None
        return row.id


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
                if earlier.answer not in (None, "FAILURE"):
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


def _payment(payment_id: str) -> Payment | None:
    with Session(get_engine(), expire_on_commit=False) as db:
        return db.get(Payment, payment_id)


@router.post("/cmi", response_class=PlainTextResponse)
async def cmi_callback(request: Request) -> PlainTextResponse:
    form = await request.form()
    fields = {k: str(v) for k, v in form.items()}
    oid = fields.get("oid", "")
    callback_id = _record("cmi", fields, oid or None)
    settings = get_settings()

    def answer(verdict: str, text: str, dedupe_key: str | None = None) -> PlainTextResponse:
        earlier = _judge(callback_id, verdict, text, dedupe_key)
        if earlier is not None:
            log.info("cmi callback %s for %s is a replay of %s", callback_id, oid, earlier.id)
            return PlainTextResponse(earlier.answer or "APPROVED")
        log.info("cmi callback %s for %s: %s -> %s", callback_id, oid, verdict, text)
        return PlainTextResponse(text)

    if not cmi_protocol.verify_hash(fields, settings.cmi_store_key):
        return answer("bad_signature", "FAILURE")
    payment = _payment(oid)
    if payment is None:
        return answer("unknown_order", "APPROVED")
    try:
        amount = api_amount(fields.get("amount", ""))  # type: ignore[arg-type]
    except ValueError:
        amount = ""
    if amount != api_amount(payment.amount):
        return answer("amount_mismatch", "APPROVED")

    trans_id = fields.get("TransId", "")
    dedupe = f"cmi:{oid}:{trans_id}:{fields.get('ProcReturnCode', '')}"
    earlier = _judge(callback_id, "processing", None, dedupe)
    if earlier is not None:
        return PlainTextResponse(earlier.answer or "APPROVED")

    result = CmiResult(
        callback_id=callback_id,
        approved=cmi_protocol.is_approved(fields),
        proc_return_code=fields.get("ProcReturnCode", ""),
        trans_id=trans_id,
        amount=amount,
        auth_code=fields.get("AuthCode") or None,
        host_ref_num=fields.get("HostRefNum") or None,
        masked_pan=fields.get("MaskedPan") or None,
        err_msg=fields.get("ErrMsg") or None,
        transaction_date=fields.get("EXTRA.TRXDATE") or None,
    )
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        return answer("temporal_unavailable", "FAILURE", dedupe)
    try:
        decision = await client.get_workflow_handle(payment.workflow_id).execute_update(
            PaymentWorkflow.cmi_result, result
        )
    except WorkflowUpdateFailedError:
        return answer("rejected", "APPROVED", dedupe)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            # The attempt is over (expired or cancelled): acknowledge without capture.
            return answer("late", "APPROVED", dedupe)
        log.warning("cmi callback %s: Temporal error %s", callback_id, err.status)
        return answer("temporal_unavailable", "FAILURE", dedupe)
    verdict = (
        "accepted"
        if decision.answer.startswith("ACTION=POSTAUTH")
        else "declined"
        if not result.approved
        else "not_captured"
    )
    return answer(verdict, decision.answer, dedupe)


@router.post("/emitters/ack")
async def emitter_ack(request: Request) -> JSONResponse:
    body = await request.body()
    settings = get_settings()
    try:
        data = json.loads(body)
        notice_id, code = str(data["notice_id"]), str(data["emitter_code"])
    except (ValueError, KeyError, TypeError):
        data, notice_id, code = {"raw": body.decode(errors="replace")[:2000]}, "", ""
    payment_id = notice_id.rsplit("-", 1)[0] if notice_id else None
    callback_id = _record("emitter", {k: str(v) for k, v in data.items()}, payment_id)
    expected = hmac.new(settings.emitter_shared_key.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(request.headers.get(SIGNATURE_HEADER, ""), expected):
        _judge(callback_id, "bad_signature", "401")
        return JSONResponse({"detail": "Signature invalide."}, status_code=401)
    payment = _payment(payment_id) if payment_id else None
    if payment is None or notice_id != f"{payment.id}-{code}":
        _judge(callback_id, "unknown_order", "404")
        return JSONResponse({"detail": "Avis inconnu."}, status_code=404)
    earlier = _judge(callback_id, "processing", None, f"emitter:{notice_id}")
    if earlier is not None:
        return JSONResponse({"status": "already_acknowledged"})
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        _judge(callback_id, "temporal_unavailable", "503", f"emitter:{notice_id}")
        return JSONResponse({"detail": "Réessayez plus tard."}, status_code=503)
    ack = EmitterAck(
        emitter_code=code,
        notice_id=notice_id,
        emitter_ack_id=str(data.get("emitter_ack_id", "")),
        callback_id=callback_id,
    )
    try:
        await client.get_workflow_handle(payment.workflow_id).signal(
            PaymentWorkflow.emitter_acknowledged, ack
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            _judge(callback_id, "late", "200", f"emitter:{notice_id}")
            return JSONResponse({"status": "late"})
        _judge(callback_id, "temporal_unavailable", "503", f"emitter:{notice_id}")
        return JSONResponse({"detail": "Réessayez plus tard."}, status_code=503)
    _judge(callback_id, "accepted", "200", f"emitter:{notice_id}")
    return JSONResponse({"status": "acknowledged"})
