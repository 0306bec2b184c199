"""Amanpay and PayDirect on the web side: the channels' payer fields, the SMS code and its resend.

The SMS code is checked for shape here and sealed at once (portnet/protocols/amanpay.py): from this
function on, only ciphertext bound to the payment travels (Update argument, activity input, history).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from portnet.protocols import amanpay as amanpay_protocol
from portnet.settings import Settings
from portnet.statuses import Channel
from workflows.payment import PaymentWorkflow
from workflows.types import AmanpayPayer, AmanpaySettings, SealedCode, SmsCodeOutcome, SmsResendOutcome

NAME = re.compile(r"^[^\d<>\"]{1,80}$")
CONTRACT = re.compile(r"^[A-Za-z0-9-]{4,20}$")
CIN = re.compile(r"^[A-Za-z]{1,2}[0-9]{1,8}$")
PHONE = re.compile(r"^\+?[0-9 .-]{8,20}$")


@dataclass
class ChannelRefused(Exception):
    status_code: int
    message: str
    code: str
    attempts_left: int | None = None
    retry_after: int | None = None


def settings_for(settings: Settings) -> AmanpaySettings:
    return AmanpaySettings(
        code_ttl_seconds=settings.amanpay_code_ttl_seconds,
        redirect_deadline_seconds=settings.amanpay_redirect_deadline_seconds,
        otp_ttl_seconds=settings.paydirect_otp_ttl_seconds,
        step_timeout_seconds=settings.paydirect_step_timeout_seconds,
    )


def payer_for(chan: Channel, payer: dict[str, str]) -> tuple[AmanpayPayer | None, str | None, str | None]:
    """The channel's own fields, checked; returns (fields, display name, phone) or raises ChannelRefused."""

    def get(name: str, limit: int = 120) -> str:
        return str(payer.get(name) or "").strip()[:limit]

    if chan == Channel.AMANPAY_CODE:
        last, first = get("last_name", 80), get("first_name", 80)
        if not NAME.match(last) or not NAME.match(first):
            raise ChannelRefused(
                422, "Nom et prénom sont requis pour recevoir le code de paiement.", "invalid_payer"
            )
        return AmanpayPayer(last_name=last, first_name=first), f"{first} {last}", None
    if chan == Channel.AMANPAY_PAYDIRECT:
        contract, cin = get("contract_number", 20).upper(), get("cin", 10).upper()
        mandataire, phone = get("mandataire", 120), get("phone", 30)
        if not CONTRACT.match(contract):
            raise ChannelRefused(422, "Numéro de contrat PayDirect invalide.", "invalid_payer")
        if not CIN.match(cin):
            raise ChannelRefused(422, "CIN invalide.", "invalid_payer")
        if not NAME.match(mandataire):
            raise ChannelRefused(422, "Nom du mandataire requis.", "invalid_payer")
        if not PHONE.match(phone):
            raise ChannelRefused(422, "Numéro de téléphone du mandataire invalide.", "invalid_payer")
        fields = AmanpayPayer(contract_number=contract, cin=cin, mandataire=mandataire, phone=phone)
        return fields, mandataire, phone
    if chan == Channel.AMANPAY_AMANTY:
        return AmanpayPayer(), None, None
    return None, None, None


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
        return ChannelRefused(409, "Ce paiement est terminé.", "wrong_state")
    return ChannelRefused(503, "Service de paiement momentanément indisponible, réessayez.", "unavailable")


async def submit_sms_code(
    client: Client, settings: Settings, workflow_id: str, payment_id: str, code: str
) -> SmsCodeOutcome:
    code = (code or "").replace(" ", "")
    if not amanpay_protocol.OTP_FORMAT.match(code):
        raise ChannelRefused(422, "Le code reçu par SMS comporte 6 chiffres.", "invalid_format")
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
