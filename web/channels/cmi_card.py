"""CMI card on the web side: CMI's server-to-server payment result, and the payer's browser coming
back from CMI's hosted page.

The card needs no field of ours (CMI's page asks for it: card numbers never touch our servers) and
no status-page part (the page's "Retourner au paiement CMI" form is any ``redirect_form`` action's).

The callback goes through the callback inbox (web/callback_inbox.py): its raw body capped at 16 KB
and hashed (a longer body is refused with 413), then judged in this order: every field against its
rule (portnet/protocols/cmi.py), then the signature, then our own state. Every call gets its
``partner_callback`` row before any answer, and before anything of ours is read: a malformed or
unsigned one is written with its verdict (those two checks read nothing but the body), a genuine one
in one transaction with its payment's reading and, when it is to be processed, the claim on its
event (``arrive``: one write before the Update where there were two, each queuing for SQLite's
write lock under load).
A malformed message, a bad signature, an unknown order, a wrong amount or a replay changes nothing
but its own row, and gets a fixed answer. A genuine result goes to the workflow as an Update,
because our plain-text answer (capture or not) depends on whether the attempt still waits for its
payer, and only the workflow knows that without a race. CMI's browser returns are redirects to the
status page, nothing more.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from portnet.i18n import N_
from portnet.models import Payment
from portnet.protocols import cmi as cmi_protocol
from portnet.protocols.fields import MessageRejected, strict_form
from portnet.settings import get_settings
from portnet.statuses import Channel, PaymentStatus
from web.attempts import PAYMENT_ID_IN_URL, forget_view
from web.callback_inbox import CallbackInFlight, arrive, claim, judge, payment_of, read_capped, record
from web.channels.base import Choice, WebChannel
from web.pages.rendering import redirect
from workflows.payment import PaymentWorkflow
from workflows.types import CmiResult

api_routes = APIRouter(prefix="/api/v1/callbacks", tags=["partner callbacks"])
page_routes = APIRouter()
log = logging.getLogger("portnet.callbacks")


# CMI reads only its plain-text answers: a 413 is answered like any refusal, without capture.
CMI_TOO_LARGE = "FAILURE"


@api_routes.post("/cmi", response_class=PlainTextResponse)
async def cmi_callback(request: Request) -> PlainTextResponse:
    received_at = datetime.now(UTC).isoformat()  # the workflow sees how long the callback queued
    raw = await read_capped(request)
    if raw.truncated:
        await record("cmi", {}, None, raw, "too_large", CMI_TOO_LARGE)
        return PlainTextResponse(CMI_TOO_LARGE, status_code=413)
    settings = get_settings()
    fields: dict[str, str] = {}
    try:  # every field against its rule, then the signature: nothing of ours is read before
        fields = strict_form(raw.received)
        callback = cmi_protocol.read_callback(fields, settings.cmi_client_id)
        signed = cmi_protocol.verify_hash(fields, settings.cmi_store_key)
    except MessageRejected as rejected:
        # Acknowledged, not captured: asking again would not make it well-formed.
        callback_id = await record("cmi", fields, fields.get("oid"), raw, "malformed", "APPROVED")
        log.info("cmi callback %s rejected: %s", callback_id, rejected)
        return PlainTextResponse("APPROVED")
    except Exception:
        await record("cmi", fields, fields.get("oid"), raw)  # kept even when judging it fails
        raise
    if not signed:
        callback_id = await record("cmi", fields, callback.oid, raw, "bad_signature", "FAILURE")
        log.info("cmi callback %s: bad_signature -> FAILURE", callback_id)
        return PlainTextResponse("FAILURE")

    def on_arrival(payment: Payment | None) -> tuple[str, str | None]:
        if payment is None:
            return "unknown_order", "APPROVED"
        if callback.amount != payment.amount:
            return "amount_mismatch", "APPROVED"
        return "processing", None

    dedupe = f"cmi:{callback.oid}:{callback.trans_id}:{callback.proc_return_code}"
    arrival = await arrive("cmi", fields, callback.oid, raw, on_arrival, dedupe)
    callback_id, payment = arrival.callback_id, arrival.payment

    async def answer(verdict: str, text: str) -> PlainTextResponse:
        await judge(callback_id, verdict, text, dedupe)
        log.info("cmi callback %s: %s -> %s", callback_id, verdict, text)
        return PlainTextResponse(text)

    if arrival.verdict != "processing" or payment is None:
        log.info("cmi callback %s: %s -> %s", callback_id, arrival.verdict, arrival.answer)
        return PlainTextResponse(arrival.answer or "APPROVED")
    if not arrival.owner:
        try:
            earlier = await claim(callback_id, dedupe)
        except CallbackInFlight:
            return PlainTextResponse("FAILURE")  # CMI retries; the delivery in flight decides
        if earlier is not None:
            log.info("cmi callback %s is a replay of %s", callback_id, earlier.id)
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
        received_at=received_at,
    )
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        return await answer("temporal_unavailable", "FAILURE")
    try:
        decision = await client.get_workflow_handle(payment.workflow_id).execute_update(
            PaymentWorkflow.cmi_result, result
        )
        forget_view(payment.id)  # the payer's status polls see the decision at once
    except WorkflowUpdateFailedError:
        return await answer("rejected", "APPROVED")
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            # The attempt is over: the ledger answers. Its accepted transaction is captured again
            # (CMI never got our first answer); anything else is acknowledged without capture.
            settled = await payment_of(callback.oid)
            if (
                callback.approved
                and settled is not None
                and settled.status == PaymentStatus.SUCCEEDED.value
                and settled.partner_transaction_id == callback.trans_id
            ):
                return await answer("accepted", "ACTION=POSTAUTH")
            return await answer("late", "APPROVED")
        log.warning("cmi callback %s: Temporal error %s", callback_id, err.status)
        return await answer("temporal_unavailable", "FAILURE")
    verdict = (
        "accepted"
        if decision.answer.startswith("ACTION=POSTAUTH")
        else "declined"
        if not result.approved
        else "not_captured"
    )
    return await answer(verdict, decision.answer)


async def _cmi_return(request: Request, payment_id: str) -> Response:
    """CMI's okUrl/failUrl: a cross-site POST that carries neither our session cookie nor a CSRF token.

    Hence no session, no token and no state change here: the code posted is only a hint for the message;
    the status page reads the truth from the workflow.
    """
    if not PAYMENT_ID_IN_URL.match(payment_id):
        raise HTTPException(status_code=404, detail=N_("Paiement introuvable."))
    code = request.query_params.get("ProcReturnCode")
    if request.method == "POST":
        posted = (await request.form()).get("ProcReturnCode")
        code = posted if isinstance(posted, str) else code
    outcome = "ok" if (code or "").strip() == "00" else "echec"
    return redirect(f"/paiements/{quote(payment_id)}?retour={outcome}")


@page_routes.post("/paiements/{payment_id}/retour")
async def cmi_return_post(request: Request, payment_id: str) -> Response:
    return await _cmi_return(request, payment_id)


@page_routes.get("/paiements/{payment_id}/retour")
async def cmi_return_get(request: Request, payment_id: str) -> Response:
    return await _cmi_return(request, payment_id)


class CmiCardWeb(WebChannel):
    name = "cmi_card"
    choices = (Choice(Channel.CMI_CARD, "Carte bancaire", "CMI", 1),)
    api = api_routes
    pages = page_routes


CHANNEL = CmiCardWeb()
