"""Banque Populaire PayDirect on the web side: the contract's fields, the SMS code and its resend
(API and portal), and the status page's code form.

The payer chooses PayDirect on Amanpay's screen (web/channels/amanpay.py). The SMS code is checked
for shape here and sealed at once (portnet/protocols/amanpay.py): from ``submit_sms_code`` on, only
ciphertext bound to the payment travels (Update argument, activity input, history).
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from portnet.i18n import N_
from portnet.models import Payment, User
from portnet.protocols import amanpay as amanpay_protocol
from portnet.settings import Settings
from portnet.statuses import Channel
from web.api.schemas import ApiModel, ErrorOut, PaymentOut
from web.attempts import PaymentRefused, payer_payment, payment_for_user, read_view
from web.channels.amanpay import NAME, PAYDIRECT_BANKS, AmanpayScreenChannel, amanpay_settings
from web.channels.base import ChannelRefused, Checkout, StatusPart
from web.deps import DB, AppSettings, CurrentUser, Temporal
from web.limits import PaymentIdPath
from web.pages.guards import CheckedForm, PageUser, form_str, is_client
from web.pages.rendering import redirect
from workflows.payment import PaymentWorkflow
from workflows.types import AmanpayPayer, PaymentView, SealedCode, SmsCodeOutcome, SmsResendOutcome

CONTRACT = re.compile(r"^[A-Za-z0-9-]{4,20}$")
CIN = re.compile(r"^[A-Za-z]{1,2}[0-9]{1,8}$")
PHONE = re.compile(r"^\+?[0-9 .-]{8,20}$")
UNAVAILABLE = N_("Service momentanément indisponible, réessayez.")

api_routes = APIRouter(tags=["payments"])
page_routes = APIRouter()


# ---------------------------------------------------------------------------- the SMS code, sealed


def _refusal(err: WorkflowUpdateFailedError) -> ChannelRefused:
    cause = err.cause
    kind = cause.type if isinstance(cause, ApplicationError) else None
    message = cause.message if isinstance(cause, ApplicationError) else "Refusé."
    if kind in ("code_dead", "code_expired", "wrong_state", "busy"):
        return ChannelRefused(409, message, kind or "conflict", attempts_left=0 if kind != "busy" else None)
    if kind in ("resend_too_soon", "resend_limit"):
        details = cause.details if isinstance(cause, ApplicationError) else ()
        retry = int(details[0]) if details and isinstance(details[0], int | float) else None
        return ChannelRefused(429, message, kind or "too_many", retry_after=retry)
    if kind == "bad_format":
        return ChannelRefused(422, message, kind)
    if kind == "bank_unavailable":
        return ChannelRefused(503, message, kind)
    return ChannelRefused(409, message, kind or "conflict")


def _rpc_refusal(err: RPCError) -> ChannelRefused:
    """A closed workflow (NOT_FOUND) is an attempt that is over: 409; anything else, Temporal is down."""
    if err.status == RPCStatusCode.NOT_FOUND:
        return ChannelRefused(409, N_("Ce paiement est terminé."), "wrong_state")
    return ChannelRefused(
        503, N_("Service de paiement momentanément indisponible, réessayez."), "unavailable"
    )


async def submit_sms_code(
    client: Client, settings: Settings, workflow_id: str, payment_id: str, code: str
) -> SmsCodeOutcome:
    code = (code or "").replace(" ", "")
    if not amanpay_protocol.OTP_FORMAT.match(code):
        raise ChannelRefused(422, N_("Le code reçu par SMS comporte 6 chiffres."), "invalid_format")
    sealed = SealedCode(amanpay_protocol.seal_otp(settings.secret_key, payment_id, code))
    del code
    try:
        outcome = await client.get_workflow_handle(workflow_id).execute_update(
            PaymentWorkflow.sms_code, sealed
        )
    except WorkflowUpdateFailedError as err:
        raise _refusal(err) from None
    except RPCError as err:
        raise _rpc_refusal(err) from None
    if outcome.result == "wrong":
        raise ChannelRefused(422, outcome.message, "wrong_code", attempts_left=outcome.attempts_left)
    if outcome.result in ("dead", "expired"):
        raise ChannelRefused(409, outcome.message, f"code_{outcome.result}", attempts_left=0)
    return outcome


async def resend_sms_code(client: Client, workflow_id: str) -> SmsResendOutcome:
    try:
        return await client.get_workflow_handle(workflow_id).execute_update(PaymentWorkflow.sms_resend)
    except WorkflowUpdateFailedError as err:
        raise _refusal(err) from None
    except RPCError as err:
        raise _rpc_refusal(err) from None


# ------------------------------------------------------------------------------------------- API


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


@api_routes.post(
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
        payment = await run_in_threadpool(payer_payment, db, user, payment_id)
    except PaymentRefused as refused:
        return _error(ChannelRefused(refused.status_code, refused.message, refused.code))
    db.close()  # not held while Temporal answers
    try:
        await submit_sms_code(client, settings, payment.workflow_id, payment.id, body.code)
    except ChannelRefused as refused:
        return _error(refused)
    return PaymentOut.of(await read_view(client, payment))


@api_routes.post(
    "/api/v1/payments/{payment_id}/sms-code/resend",
    status_code=202,
    response_model=None,
    responses={c: {"model": ErrorOut} for c in (403, 404, 409, 429, 503)},
)
async def sms_code_resend(
    payment_id: PaymentIdPath, user: CurrentUser, db: DB, client: Temporal
) -> dict[str, object] | JSONResponse:
    try:
        payment = await run_in_threadpool(payer_payment, db, user, payment_id)
    except PaymentRefused as refused:
        return _error(ChannelRefused(refused.status_code, refused.message, refused.code))
    db.close()  # not held while Temporal answers
    try:
        outcome = await resend_sms_code(client, payment.workflow_id)
    except ChannelRefused as refused:
        return _error(refused)
    return {"status": "sent", "expires_at": outcome.expires_at, "resends_left": outcome.resends_left}


# ---------------------------------------------------------------------------------------- portal


def _owned(db: Session, user: User, payment_id: str) -> Payment:
    payment = payment_for_user(db, user, payment_id)
    if payment is None:
        raise HTTPException(status_code=404, detail=N_("Paiement introuvable."))
    if not is_client(user) or payment.company_id != user.company_id:
        raise HTTPException(
            status_code=403, detail=N_("Seul le client qui a lancé ce paiement peut saisir le code.")
        )
    return payment


@page_routes.post("/paiements/{payment_id}/code-sms")
async def sms_code_page(
    request: Request, payment_id: str, db: DB, user: PageUser, form: CheckedForm, settings: AppSettings
) -> Response:
    payment = await run_in_threadpool(_owned, db, user, payment_id)
    client: Client | None = await request.app.state.temporal.get()
    status_url = f"/paiements/{quote(payment.id)}"
    if client is None:
        return redirect(status_url, UNAVAILABLE, "error", settings)
    try:
        await submit_sms_code(client, settings, payment.workflow_id, payment.id, form_str(form, "code", 20))
    except ChannelRefused as refused:
        return redirect(status_url, refused.message, "error", settings)
    except RPCError:
        return redirect(status_url, UNAVAILABLE, "error", settings)
    return redirect(status_url, N_("Code accepté : la banque a autorisé le paiement."), "success", settings)


@page_routes.post("/paiements/{payment_id}/code-sms/renvoyer")
async def sms_resend_page(
    request: Request, payment_id: str, db: DB, user: PageUser, form: CheckedForm, settings: AppSettings
) -> Response:
    payment = await run_in_threadpool(_owned, db, user, payment_id)
    client: Client | None = await request.app.state.temporal.get()
    status_url = f"/paiements/{quote(payment.id)}"
    if client is None:
        return redirect(status_url, UNAVAILABLE, "error", settings)
    try:
        await resend_sms_code(client, payment.workflow_id)
    except ChannelRefused as refused:
        return redirect(status_url, refused.message, "warning", settings)
    return redirect(status_url, N_("Un nouveau code vous a été envoyé par SMS."), "info", settings)


# ------------------------------------------------------------------------------- the web channel


class PayDirectWeb(AmanpayScreenChannel):
    name = "paydirect"
    screen_channels = (Channel.AMANPAY_PAYDIRECT,)  # chosen on Amanpay's screen
    api = api_routes
    pages = page_routes

    def checkout(
        self,
        channel: Channel,
        payer: dict[str, str],
        declaration: dict[str, str] | None,
        settings: Settings,
        today: date,
    ) -> Checkout:
        """The contract, checked by the bank afterwards; the mandataire becomes the payer."""

        def get(name: str, limit: int) -> str:
            return str(payer.get(name) or "").strip()[:limit]

        # The portal's screen sends the bank chosen first; the API may leave it out (PayDirect's bank).
        bank = get("bank", 10)
        if bank and bank not in dict(PAYDIRECT_BANKS):
            raise ChannelRefused(422, N_("Choisissez votre banque."), "invalid_payer")
        contract, cin = get("contract_number", 20).upper(), get("cin", 10).upper()
        mandataire, phone = get("mandataire", 120), get("phone", 30)
        if not CONTRACT.match(contract):
            raise ChannelRefused(422, N_("Numéro de contrat PayDirect invalide."), "invalid_payer")
        if not CIN.match(cin):
            raise ChannelRefused(422, "CIN invalide.", "invalid_payer")
        if not NAME.match(mandataire):
            raise ChannelRefused(422, N_("Nom du mandataire requis."), "invalid_payer")
        if not PHONE.match(phone):
            raise ChannelRefused(422, N_("Numéro de téléphone du mandataire invalide."), "invalid_payer")
        return Checkout(
            amanpay=AmanpayPayer(contract_number=contract, cin=cin, mandataire=mandataire, phone=phone),
            amanpay_settings=amanpay_settings(settings),
            payer_name=mandataire,
            payer_phone=phone,
        )

    def status_part(
        self, db: Session, settings: Settings, payment: Payment, view: PaymentView
    ) -> StatusPart | None:
        return StatusPart("channels/paydirect_status.html")


CHANNEL = PayDirectWeb()
