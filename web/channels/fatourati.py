"""CMI Fatourati on the web side: CMI's calls to us (the payment callback, the token status check)
and the reference page ("COMMENT PROCÉDER AU PAIEMENT", worded as the user guide's section II.2.b
"Par CMI" words it, bank channel by bank channel; the guide lists "Global Vision FAWATIR" without
steps of its own: like the other agencies, the reference is presented at the counter).

The callback goes through the callback inbox (web/callback_inbox.py): stored first
(``partner_callback``, raw body capped at 16 KB and hashed; a longer one gets 413), then judged:
every field against its rule (portnet/protocols/fatourati.py), then the signature, then our state.
A malformed message, a bad signature or a reference that belongs to another order changes nothing
but its own row and gets a fixed, unsigned answer; a duplicate (same Fatourati transaction number)
gets the first answer again. A genuine payment goes to the workflow as an Update, which alone
decides whether it still counts. Money that no longer can (the deadline passed, the reference was
already paid, the attempt was cancelled), that we cannot place (a genuine, signed payment on a
reference we do not know) or whose amount is not the reference's (CMI collected it all the same)
becomes an ``unapplied_payment`` for finance: never dropped, never applied.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.receipts import receipt_number
from portnet import unapplied
from portnet.db import get_engine
from portnet.i18n import N_
from portnet.models import Company, Payment, PaymentChannelData
from portnet.protocols import fatourati as proto
from portnet.protocols.fields import MessageRejected, strict_json_object
from portnet.settings import Settings, get_settings
from portnet.statuses import Channel, PaymentStatus
from portnet.unapplied import OTHER_AMOUNT_RELEASE, amount_differs, settled_by
from web.attempts import forget_view
from web.callback_inbox import (
    CallbackInFlight,
    as_payload,
    claimed,
    judge,
    read_capped,
    record,
    release_early,
)
from web.channels.base import Choice, StatusPart, WebChannel, remaining_text, sandbox_pages
from web.fatourati_guide import CHANNELS, GENERAL
from workflows.payment import PaymentWorkflow
from workflows.types import FatouratiDecision, FatouratiResult, PaymentView

api_routes = APIRouter(prefix="/api/v1/callbacks/fatourati", tags=["partner callbacks"])
log = logging.getLogger("portnet.callbacks.fatourati")


# --------------------------------------------------------------------------- CMI's calls to us


# Error answers are fixed texts: nothing the caller sent is echoed, nothing is signed.
FIXED = {
    "too_large": (413, {"status": "REJECTED", "error": "too_large"}),
    "malformed": (400, {"status": "REJECTED", "error": "invalid_message"}),
    "bad_signature": (401, {"status": "REJECTED", "error": "bad_signature"}),
    "reference_mismatch": (422, {"status": "REJECTED", "error": "reference_mismatch"}),
    "temporal_unavailable": (503, {"status": "RETRY", "error": "unavailable"}),
}


def replay(answer: str) -> JSONResponse:
    """The first answer to this transaction, again, with its status code."""
    body = json.loads(answer)
    status_code = next((code for code, fixed in FIXED.values() if fixed == body), 200)
    return JSONResponse(body, status_code=status_code)


def _find(order_id: str, reference: str) -> tuple[Payment | None, PaymentChannelData | None]:
    """The attempt a reference was issued for, and that reference's row; (None, None) if unknown."""
    with Session(get_engine(), expire_on_commit=False) as db:
        data = db.exec(
            select(PaymentChannelData).where(PaymentChannelData.partner_reference == reference)
        ).first()
        payment = db.get(Payment, data.payment_id if data is not None else order_id)
        return payment, data


def keep_unapplied(
    callback_id: int, callback: proto.PaymentCallback, payment_id: str | None, amount: Decimal, reason: str
) -> int:
    """One row per Fatourati transaction; a redelivery finds the row already there."""
    return unapplied.keep(
        unapplied.UnappliedMoney(
            channel=Channel.CMI_FATOURATI,
            transaction_number=callback.transaction_number,
            amount=amount,
            reason=reason,
            callback_id=callback_id,
            payment_id=payment_id,
            partner_reference=callback.token_ref,
            paid_at=unapplied.naive_utc(callback.transaction_date),
        )
    )


def unapplied_receipt(unapplied_id: int) -> str:
    return f"ENC-{unapplied_id:08d}"


@api_routes.post("")
async def fatourati_callback(request: Request) -> JSONResponse:
    settings = get_settings()
    raw = await read_capped(request)
    if raw.truncated:
        status_code, body = FIXED["too_large"]
        await record("fatourati", {}, None, raw, "too_large", json.dumps(body))
        return JSONResponse(body, status_code=status_code)
    data: dict[str, object] | None = None
    callback: proto.PaymentCallback | None = None
    try:
        data = strict_json_object(raw.received)
        callback = proto.read_callback(data, settings.fatourati_merchant_code, settings.fatourati_store_id)
    except MessageRejected as rejected:
        log.info("fatourati callback rejected: %s", rejected)
    callback_id = await record("fatourati", as_payload(data), claimed(data, "orderId"), raw)

    async def refuse(verdict: str, dedupe: str | None = None) -> JSONResponse:
        status_code, body = FIXED[verdict]
        earlier = await judge(callback_id, verdict, json.dumps(body), dedupe)
        if earlier is not None and earlier.answer:
            return replay(earlier.answer)
        log.info("fatourati callback %s: %s", callback_id, verdict)
        return JSONResponse(body, status_code=status_code)

    if callback is None:
        return await refuse("malformed")
    assert data is not None
    if not proto.verify(data, proto.CALLBACK, settings.fatourati_api_key):
        return await refuse("bad_signature")
    genuine: proto.PaymentCallback = callback

    async def done(verdict: str, status: str, receipt: str | None, dedupe: str) -> JSONResponse:
        """A genuine callback's answer, signed, status included."""
        body = proto.callback_answer(genuine, status, receipt, settings.fatourati_api_key)
        earlier = await judge(callback_id, verdict, json.dumps(body), dedupe)
        if earlier is not None and earlier.answer:
            return replay(earlier.answer)
        log.info("fatourati callback %s for %s: %s -> %s", callback_id, genuine.order_id, verdict, status)
        return JSONResponse(body)

    dedupe = f"fatourati:{genuine.transaction_number}:{genuine.decision_code}"
    try:
        earlier = await judge(callback_id, "processing", None, dedupe)
    except CallbackInFlight:
        status_code, body = FIXED["temporal_unavailable"]
        return JSONResponse(body, status_code=status_code)
    if earlier is not None and earlier.answer:
        return replay(earlier.answer)

    payment, channel_data = await run_in_threadpool(_find, genuine.order_id, genuine.token_ref)
    if channel_data is not None and channel_data.payment_id != genuine.order_id:
        # CMI signed it, yet the reference is another order's: nothing is applied, finance looks.
        return await refuse("reference_mismatch", dedupe)
    if payment is None or channel_data is None:
        # A genuine payment we cannot place (reference unknown, or not issued for that order).
        if not genuine.paid:
            return await done("unknown_order", "RECORDED", None, dedupe)
        reason = N_("Référence Fatourati inconnue") + (" pour cette commande" if payment is not None else "")
        unapplied = await run_in_threadpool(
            keep_unapplied,
            callback_id,
            genuine,
            payment.id if payment else None,
            genuine.total_amount,
            reason,
        )
        return await done("unapplied", "RECEIVED_UNAPPLIED", unapplied_receipt(unapplied), dedupe)

    async def another_amount(attempt: Payment) -> JSONResponse:
        """CMI collected another amount than the reference's: finance's money, never the attempt's,
        which gives its invoices back (the reference is spent)."""
        if not genuine.paid:
            return await done("declined", "RECORDED", None, dedupe)
        reason = amount_differs(attempt.amount, genuine.total_amount)
        kept = await run_in_threadpool(
            keep_unapplied, callback_id, genuine, attempt.id, genuine.total_amount, reason
        )
        answer = await done("unapplied", "RECEIVED_UNAPPLIED", unapplied_receipt(kept), dedupe)
        await release_early(request, attempt, OTHER_AMOUNT_RELEASE)
        return answer

    if genuine.total_amount != payment.amount:
        return await another_amount(payment)

    result = FatouratiResult(
        callback_id=callback_id,
        transaction_number=genuine.transaction_number,
        decision_code=genuine.decision_code,
        amount=f"{genuine.total_amount:.2f}",
        channel=genuine.channel,
        transaction_date=genuine.transaction_date or None,
    )
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        return await refuse("temporal_unavailable", dedupe)
    decision: FatouratiDecision
    try:
        decision = await client.get_workflow_handle(payment.workflow_id).execute_update(
            PaymentWorkflow.fatourati_result, result
        )
        forget_view(payment.id)  # the payer's status page sees the decision at once
    except (WorkflowUpdateFailedError, RPCError) as err:
        if isinstance(err, RPCError) and err.status not in (
            RPCStatusCode.NOT_FOUND,
            RPCStatusCode.FAILED_PRECONDITION,
        ):
            log.warning("fatourati callback %s: Temporal error %s", callback_id, err.status)
            return await refuse("temporal_unavailable", dedupe)
        # The attempt is closed (expired, cancelled, settled long ago): nothing to decide any more.
        decision = FatouratiDecision("unapplied", f"attempt closed ({payment.status})")
    if decision.outcome in ("accepted", "duplicate"):
        return await done(
            "accepted" if decision.outcome == "accepted" else "replay",
            "ACCEPTED",
            decision.receipt_number,
            dedupe,
        )
    if decision.outcome == "refused":
        return await done("declined", "RECORDED", None, dedupe)
    if decision.outcome == "amount_mismatch":
        return await another_amount(payment)
    if not genuine.paid:
        return await done("late", "RECORDED", None, dedupe)
    if await run_in_threadpool(settled_by, payment.id, genuine.transaction_number):
        # A redelivery after the attempt closed, of the transaction it settled on: the ledger answers.
        return await done("replay", "ACCEPTED", receipt_number(payment.id), dedupe)
    reason = {
        PaymentStatus.SUCCEEDED.value: N_("Référence déjà payée (paiement en double)"),
    }.get(payment.status, N_("Paiement reçu après l'échéance de la référence"))
    unapplied = await run_in_threadpool(
        keep_unapplied,
        callback_id,
        genuine,
        payment.id,
        genuine.total_amount,
        f"{reason} ({decision.reason})",
    )
    return await done("unapplied", "RECEIVED_UNAPPLIED", unapplied_receipt(unapplied), dedupe)


STATUS_OF_PAYMENT = {
    PaymentStatus.SUCCEEDED.value: "PAID",
    PaymentStatus.EXPIRED.value: "EXPIRED",
    PaymentStatus.FAILED.value: "EXPIRED",
    PaymentStatus.CANCELLED.value: "CANCELLED",
}


@api_routes.post("/status")
async def check_status(request: Request) -> JSONResponse:
    """CMI asks for a token's status; we answer from our state (the ledger the workflow keeps)."""
    settings = get_settings()
    raw = await read_capped(request)
    if raw.truncated:
        return JSONResponse(FIXED["too_large"][1], status_code=413)
    try:
        data = strict_json_object(raw.received)
        reference = proto.read_status_request(
            data, settings.fatourati_merchant_code, settings.fatourati_store_id
        )
    except MessageRejected:
        return JSONResponse(FIXED["malformed"][1], status_code=400)
    if not proto.verify(data, proto.STATUS_REQUEST, settings.fatourati_api_key):
        return JSONResponse(FIXED["bad_signature"][1], status_code=401)
    payment, channel_data = await run_in_threadpool(_find, "", reference)
    if payment is None or channel_data is None:
        status = "NOT_FOUND"
    else:
        status = STATUS_OF_PAYMENT.get(payment.status, "PENDING")
    return JSONResponse(proto.status_answer(reference, status, settings.fatourati_api_key))


# ------------------------------------------------------------------------------- the web channel


class FatouratiWeb(WebChannel):
    name = "fatourati"
    choices = (Choice(Channel.CMI_FATOURATI, "Fatourati", "CMI", 2),)
    api = api_routes

    def deadline_seconds(self, settings: Settings) -> int:
        return settings.fatourati_expiry_seconds

    def status_part(
        self, db: Session, settings: Settings, payment: Payment, view: PaymentView
    ) -> StatusPart | None:
        """The reference while it waits to be paid: its digits, its countdown, the guide's steps."""
        action = view.next_action
        if (
            action is None
            or action.type != "fatourati_reference"
            or not action.fields
            or view.status != PaymentStatus.AWAITING_PAYER.value
        ):
            return None
        sandbox = sandbox_pages(settings)
        hours = _hours(settings.fatourati_expiry_seconds)
        return StatusPart(
            "channels/fatourati_status.html",
            {
                "guide": CHANNELS,
                # Translated by the page, then {reference} and {hours} filled in (fatourati_status.html).
                "general": GENERAL,
                "expiry_hours": hours,
                "client": db.get(Company, payment.company_id),
                "remaining": remaining_text(action.fields.get("expires_at")),
                "sandbox_url": f"{sandbox}/fatourati" if sandbox else "",
            },
        )


def _hours(seconds: int) -> str:
    """``3 heures`` (or ``90 minutes`` for a deadline that is not whole hours)."""
    if seconds % 3600:
        return f"{seconds // 60} minutes"
    return f"{seconds // 3600} heure{'s' if seconds >= 7200 else ''}"


CHANNEL = FatouratiWeb()
