"""PayDirect adapter: the bank checks the contract, sends an SMS code, and verifies the code typed.

Same signed JSON as Amanpay (activities/amanpay.py, portnet/protocols/amanpay.py): refusals are
answers with a reason code, every other answer is checked field by field, then its signature. The
SMS code reaches this module sealed and is opened only to be sent to the bank: it is never logged,
returned or stored here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.amanpay import checked, post
from portnet.protocols import amanpay as proto
from portnet.protocols.amanpay import Message
from portnet.settings import get_settings


@dataclass
class PayDirectStartInput:
    payment_id: str
    amount: str
    contract_number: str
    cin: str
    mandataire: str
    phone: str
    email: str


@dataclass
class PayDirectStart:
    ok: bool
    auth_ref: str = ""
    attempts_left: int = 0
    error_code: str | None = None
    error: str | None = None


@dataclass
class PayDirectVerifyInput:
    payment_id: str
    auth_ref: str
    sealed: str
    request_id: str


@dataclass
class PayDirectVerdict:
    result: str  # authorized | wrong | dead | expired
    attempts_left: int = 0
    transaction_id: str = ""
    authorization_code: str = ""


def _paydirect_url(path: str) -> str:
    return f"{get_settings().paydirect_base_url.rstrip('/')}/api/authorizations{path}"


@activity.defn
async def paydirect_start(inp: PayDirectStartInput) -> PayDirectStart:
    settings = get_settings()
    reply = await post(
        _paydirect_url(""),
        {
            "merchant_id": settings.amanpay_merchant_id,
            "order_id": inp.payment_id,
            "amount": inp.amount,
            "contract_number": inp.contract_number,
            "cin": inp.cin,
            "mandataire": inp.mandataire,
            "phone": inp.phone,
            "email": inp.email,
        },
        settings.paydirect_secret_key,
        proto.PAYDIRECT_HEADER,
        Message.AUTHORIZATION_CREATE,
    )
    if reply.refused:
        reason = proto.refusal_reason(reply.data)
        if reason in proto.PAYDIRECT_REFUSALS:
            return PayDirectStart(ok=False, error_code=reason, error=proto.PAYDIRECT_REFUSALS[reason])
        code, message = proto.PAYDIRECT_REFUSAL
        return PayDirectStart(ok=False, error_code=code, error=message)
    auth_ref, attempts_left = checked(
        reply,
        settings.paydirect_secret_key,
        Message.AUTHORIZATION,
        lambda data: proto.read_authorization(data, inp.payment_id),
        retryable=True,
    )
    return PayDirectStart(ok=True, auth_ref=auth_ref, attempts_left=attempts_left)


@activity.defn
async def paydirect_resend(auth_ref: str) -> int:
    """Asks the bank for a new SMS code; returns the tries left on it."""
    settings = get_settings()
    reply = await post(
        _paydirect_url(f"/{auth_ref}/otp"),
        {"auth_ref": auth_ref},
        settings.paydirect_secret_key,
        proto.PAYDIRECT_HEADER,
        Message.OTP_RESEND,
    )
    if reply.refused:
        raise ApplicationError(
            f"PayDirect refused a new code: {proto.refusal_reason(reply.data) or 'refused'}",
            type="BusinessRefusal",
            non_retryable=True,
        )
    # Not retried when the answer fails its checks: each call sends the payer another code.
    attempts: int = checked(
        reply,
        settings.paydirect_secret_key,
        Message.OTP_SENT,
        lambda data: proto.read_otp_sent(data, auth_ref),
        retryable=False,
    )
    return attempts


@activity.defn
async def paydirect_verify(inp: PayDirectVerifyInput) -> PayDirectVerdict:
    settings = get_settings()
    code = proto.open_otp(settings.secret_key, inp.payment_id, inp.sealed)
    if code is None:
        # Not sealed by us for this payment (or too old): count nothing at the bank.
        raise ApplicationError("sealed code rejected", type="BusinessRefusal", non_retryable=True)
    reply = await post(
        _paydirect_url(f"/{inp.auth_ref}/verify"),
        {"otp": code, "request_id": inp.request_id},
        settings.paydirect_secret_key,
        proto.PAYDIRECT_HEADER,
        Message.OTP_VERIFY,
    )
    del code
    if reply.refused:
        raise ApplicationError(
            f"PayDirect refused the verification: {proto.refusal_reason(reply.data) or 'refused'}",
            type="BusinessRefusal",
            non_retryable=True,
        )
    # Retried when the answer fails its checks: the request id makes the bank answer the same verdict.
    verdict: proto.OtpVerdict = checked(
        reply,
        settings.paydirect_secret_key,
        Message.OTP_VERDICT,
        lambda data: proto.read_otp_verdict(data, inp.auth_ref, inp.request_id),
        retryable=True,
    )
    return PayDirectVerdict(
        result=verdict.result,
        attempts_left=verdict.attempts_left,
        transaction_id=verdict.transaction_id,
        authorization_code=verdict.authorization_code,
    )


ACTIVITIES: list[Callable[..., Any]] = [paydirect_start, paydirect_resend, paydirect_verify]
