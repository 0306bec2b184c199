"""Amanpay (cash code and Amanty) on the web side: Amanpay's own screen, the payer's fields, the
status page's cash code, and Amanpay's signed notifications.

Amanpay's screen (the guide's: order number, amount, three choices, each with its own fields) comes
between the confirmation screen and the start, for PayDirect too (web/channels/paydirect.py).

Notifications go through the callback inbox (web/callback_inbox.py) like CMI's callbacks: stored
first (raw body capped at 16 KB and hashed; a longer one gets 413), every field checked
(portnet/protocols/amanpay.py), then verified (HMAC-SHA256 over the message label and the raw body,
constant-time), deduplicated on Amanpay's event id, then given to the workflow as an Update. A
genuine ``paid`` notification the workflow does not take (the code expired, the attempt is over),
whose order we do not know, or whose amount is not the order's (never given to the workflow) is
recorded as an unapplied payment for finance: money is never dropped.
"""

from __future__ import annotations

import logging
import re
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from portnet import unapplied
from portnet.i18n import N_
from portnet.models import Payment
from portnet.money import total
from portnet.protocols import amanpay as amanpay_protocol
from portnet.protocols.fields import MessageRejected, strict_json_object
from portnet.settings import Settings, get_settings
from portnet.statuses import Channel
from web.attempts import forget_view, new_payment_id
from web.callback_inbox import (
    BAD_SIGNATURE,
    MALFORMED,
    TOO_LARGE,
    CallbackInFlight,
    as_payload,
    claimed,
    judge,
    payment_of,
    read_capped,
    record,
    release_early,
)
from web.channels.base import ChannelRefused, Checkout, Choice, StatusPart, WebChannel
from web.pages.guards import form_str
from web.pages.rendering import render
from workflows.payment import PaymentWorkflow
from workflows.types import AmanpayNotice, AmanpayPayer, AmanpaySettings, PaymentView

# The notification answers in the "payments" group of the API document too, as it always did.
api_routes = APIRouter(tags=["payments"])
log = logging.getLogger("portnet.amanpay")

NAME = re.compile(r"^[^\d<>\"]{1,80}$")
# Amanpay's screen, as the guide shows it.
SCREEN_CHOICES = (
    (Channel.AMANPAY_AMANTY, N_("Carte Amanty")),
    (Channel.AMANPAY_PAYDIRECT, "PayDirect"),
    (Channel.AMANPAY_CODE, N_("Code de paiement")),
)
SCREEN_FIELDS = (
    "last_name",
    "first_name",
    "contract_number",
    "cin",
    "mandataire",
    "phone",
    "email",
    "bank",
)
# What the confirmation screen sends for Amanpay: its screen then asks for the means.
PLATFORM = "amanpay"
# The banks whose customers pay through PayDirect [316-320]: the payer picks theirs first.
PAYDIRECT_BANKS = (("BCP", "Banque Populaire"),)


def amanpay_settings(settings: Settings) -> AmanpaySettings:
    return AmanpaySettings(
        code_ttl_seconds=settings.amanpay_code_ttl_seconds,
        redirect_deadline_seconds=settings.amanpay_redirect_deadline_seconds,
        otp_ttl_seconds=settings.paydirect_otp_ttl_seconds,
        step_timeout_seconds=settings.paydirect_step_timeout_seconds,
    )


def screen_page(
    request: Request,
    settings: Settings,
    rows: list[Any],
    ids: list[int],
    channel: str,
    payer: dict[str, str],
    error: str | None = None,
    status_code: int = 200,
    order_id: str | None = None,
    form: FormData | None = None,
) -> Response:
    """Amanpay's screen: the order number (our payment id, kept for the start), amount, choices.

    PayDirect starts with the bank [316-320]: choosing it comes back here (``form`` carries the
    bank, the order number and the payer) and opens the contract's fields."""
    amount: Decimal = total(inv.amount_ttc for inv, _, _ in rows)
    if form is not None:
        order_id = order_id or _order_id(form)
        bank = form_str(form, "ap_bank", 10)
        if bank:
            payer = {**payer, "bank": bank}
    banks = dict(PAYDIRECT_BANKS)
    return render(
        request,
        "channels/amanpay_screen.html",
        {
            "order_id": order_id or new_payment_id(),
            "amount": amount,
            "numbers": [inv.number for inv, _, _ in rows],
            "ids": ids,
            "choices": SCREEN_CHOICES,
            "chosen": channel,
            "payer": {name: "" for name in (*SCREEN_FIELDS, "name")} | {k: v for k, v in payer.items() if v},
            "banks": PAYDIRECT_BANKS,
            "bank_name": banks.get(payer.get("bank", "")),
            "error": error,
        },
        settings=settings,
        status_code=status_code,
    )


def _order_id(form: FormData) -> str | None:
    order_id = form_str(form, "order_id", 20)
    return order_id if re.fullmatch(r"PN[0-9A-F]{12}", order_id) else None


# ------------------------------------------------------------------ Amanpay's notifications


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


@api_routes.post("/api/v1/callbacks/amanpay", tags=["partner callbacks"])
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
            return await answer("unknown_order", 404, {"detail": N_("Commande inconnue.")})
        dedupe = f"amanpay:{notice.event_id}"
        try:
            if await judge(callback_id, "processing", None, dedupe) is not None:
                return JSONResponse({"status": "already_processed"})
        except CallbackInFlight:
            return JSONResponse({"detail": N_("Réessayez plus tard.")}, status_code=503)
        await run_in_threadpool(
            record_unapplied, None, notice, callback_id, N_("Paiement notifié pour une commande inconnue")
        )
        return await answer("unapplied", 200, {"status": "unapplied"}, dedupe)
    dedupe = f"amanpay:{notice.event_id}"
    try:
        earlier = await judge(callback_id, "processing", None, dedupe)
    except CallbackInFlight:
        return JSONResponse({"detail": N_("Réessayez plus tard.")}, status_code=503)
    if earlier is not None:
        return JSONResponse({"status": "already_processed"})
    if notice.amount != payment.amount:
        # Amanpay collected another amount than the order's: finance's money, never the attempt's.
        if notice.status != "paid":  # a refusal or a cancellation: no money, acknowledged
            return await answer("declined", 200, {"status": "ignored"}, dedupe)
        reason = unapplied.amount_differs(payment.amount, notice.amount)
        await run_in_threadpool(record_unapplied, payment, notice, callback_id, reason)
        acknowledged = await answer("unapplied", 200, {"status": "unapplied"}, dedupe)
        await release_early(request, payment, unapplied.OTHER_AMOUNT_RELEASE)  # the order is spent
        return acknowledged
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
        return await answer("temporal_unavailable", 503, {"detail": N_("Réessayez plus tard.")}, dedupe)
    try:
        decision = await client.get_workflow_handle(payment.workflow_id).execute_update(
            PaymentWorkflow.amanpay_result, update
        )
        forget_view(payment.id)  # the payer's status page sees the decision at once
        accepted, reason = decision.accepted, decision.reason
    except WorkflowUpdateFailedError as err:
        accepted, reason = False, str(err.cause or err)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            return await answer("temporal_unavailable", 503, {"detail": N_("Réessayez plus tard.")}, dedupe)
        accepted, reason = False, "attempt is over"
    if accepted:
        return await answer("accepted", 200, {"status": "accepted"}, dedupe)
    settling = f"amanpay:{notice.transaction_id}"
    if notice.status == "paid" and await run_in_threadpool(unapplied.settled_by, payment.id, settling):
        # A redelivery after the attempt closed, of the payment it settled on: the ledger answers.
        return await answer("replay", 200, {"status": "accepted"}, dedupe)
    if notice.status == "paid":
        log.info("amanpay paid notice for %s not taken by the workflow: %s", payment.id, reason)
        await run_in_threadpool(
            record_unapplied,
            payment,
            notice,
            callback_id,
            N_("Paiement notifié après l'expiration du code ou la clôture de la tentative"),
        )
        return await answer("unapplied", 200, {"status": "unapplied"}, dedupe)
    return await answer("late", 200, {"status": "ignored"}, dedupe)


# ------------------------------------------------------------------------------- the web channel


class AmanpayScreenChannel(WebChannel):
    """A channel chosen on Amanpay's screen: its fields come from there, with the order number."""

    screen = staticmethod(screen_page)

    def shows_screen(self, form: FormData) -> bool:
        """Coming from the confirmation screen: show Amanpay's own screen before anything starts."""
        return not form_str(form, "amanpay_step", 5)

    def form_payer(self, form: FormData, payer: dict[str, str]) -> dict[str, str]:
        fields = {name: form_str(form, f"ap_{name}", 120) for name in SCREEN_FIELDS}
        return {k: v for k, v in fields.items() if v}

    def order_id(self, form: FormData) -> str | None:
        return _order_id(form)


class AmanpayWeb(AmanpayScreenChannel):
    """Amanpay is one choice on the confirmation screen (the guide's logo [254]); its means (Amanty,
    PayDirect, the cash code) are chosen on Amanpay's screen [287-296], before the attempt starts."""

    name = "amanpay"
    api = api_routes
    choices = (Choice(Channel.AMANPAY_AMANTY, "Amanpay", "Amanpay", 4, value=PLATFORM, name="Amanpay"),)
    screen_channels = (Channel.AMANPAY_AMANTY, Channel.AMANPAY_CODE)

    def checkout(
        self,
        channel: Channel,
        payer: dict[str, str],
        declaration: dict[str, str] | None,
        settings: Settings,
        today: date,
    ) -> Checkout:
        """The cash code needs the payer's names (on the code and its e-mail); Amanty asks on its page."""
        if channel != Channel.AMANPAY_CODE:
            return Checkout(amanpay=AmanpayPayer(), amanpay_settings=amanpay_settings(settings))
        last = str(payer.get("last_name") or "").strip()[:80]
        first = str(payer.get("first_name") or "").strip()[:80]
        if not NAME.match(last) or not NAME.match(first):
            raise ChannelRefused(
                422, N_("Nom et prénom sont requis pour recevoir le code de paiement."), "invalid_payer"
            )
        return Checkout(
            amanpay=AmanpayPayer(last_name=last, first_name=first),
            amanpay_settings=amanpay_settings(settings),
            payer_name=f"{first} {last}",
        )

    def status_part(
        self, db: Session, settings: Settings, payment: Payment, view: PaymentView
    ) -> StatusPart | None:
        return StatusPart("channels/amanpay_status.html")


CHANNEL = AmanpayWeb()
