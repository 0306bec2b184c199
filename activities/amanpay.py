"""Amanpay and PayDirect adapters: signed JSON over HTTP to the partner (the sandbox in development).

Business refusals (unknown contract, CIN mismatch...) are answers, not errors; only transport
failures and 5xx raise, so Temporal retries them. Refusals are unsigned: we read only their reason
code and show our own sentence. Every other answer is checked field by field, bound to what we
asked (order, amount, authorization, request), then its signature (portnet/amanpay_protocol.py):
one that fails is treated as no answer from the partner (``PartnerAnswerRejected``), so a forged
"authorized" never settles anything. Such a failure is retried where the call is idempotent (same
order, same request id), not where a retry would act twice (a new SMS code).

The PayDirect SMS code reaches this module sealed and is opened only to be sent to the bank: it is
never logged, returned or stored here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from portnet import amanpay_protocol as proto
from portnet.money import to_money
from portnet.partner_fields import MessageRejected, strict_json_object
from portnet.settings import get_settings
from workflows.types import (
    AmanpayOrder,
    AmanpayOrderInput,
    PayDirectStart,
    PayDirectStartInput,
    PayDirectVerdict,
    PayDirectVerifyInput,
)

TIMEOUT = httpx.Timeout(15.0)
Message = proto.Message


class Reply:
    """A partner's answer: its status code, its JSON body (unchecked) and the raw bytes it signed."""

    def __init__(self, response: httpx.Response, header: str) -> None:
        self.status_code = response.status_code
        self.raw = response.content
        self.signature = response.headers.get(header)
        try:
            self.data: dict[str, Any] | None = strict_json_object(self.raw)
        except MessageRejected:
            self.data = None

    @property
    def refused(self) -> bool:
        return 400 <= self.status_code < 500


async def _post(url: str, body: dict[str, Any], key: str, header: str, message: Message) -> Reply:
    raw = proto.dumps(body)
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        response = await client.post(
            url,
            content=raw,
            headers={"Content-Type": "application/json", header: proto.sign(key, message, raw)},
        )
    if response.status_code >= 500 or response.status_code in (401, 403):
        # Our configuration or their outage: retry (and alert) rather than tell the payer "refused".
        raise ApplicationError(f"partner answered HTTP {response.status_code}")
    return Reply(response, header)


def _checked(reply: Reply, key: str, message: Message, read: Any, *, retryable: bool) -> Any:
    """``read(data)`` (the field rules) first, then the signature; raises if either fails."""
    try:
        if reply.data is None:
            raise MessageRejected("body", "not a JSON object")
        value = read(reply.data)
    except MessageRejected as rejected:
        raise _rejected(message, str(rejected), retryable) from None
    if not proto.verify(key, message, reply.raw, reply.signature):
        raise _rejected(message, "bad signature", retryable)
    return value


def _rejected(message: Message, why: str, retryable: bool) -> ApplicationError:
    return ApplicationError(
        f"{message.value} answer rejected: {why}", type="PartnerAnswerRejected", non_retryable=not retryable
    )


def _notify_url() -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/api/v1/callbacks/amanpay"


def _return_url(payment_id: str) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/paiements/{payment_id}"


@activity.defn
async def create_order(inp: AmanpayOrderInput) -> AmanpayOrder:
    """Cash payment code or Amanty order; Amanpay answers the same order again for the same id."""
    settings = get_settings()
    reply = await _post(
        f"{settings.amanpay_base_url.rstrip('/')}/api/orders",
        {
            "merchant_id": settings.amanpay_merchant_id,
            "order_id": inp.payment_id,
            "amount": inp.amount,
            "currency": "MAD",
            "method": inp.method,
            "customer": {"last_name": inp.last_name, "first_name": inp.first_name, "email": inp.email},
            "notify_url": _notify_url(),
            "return_url": _return_url(inp.payment_id),
            "ttl_seconds": inp.ttl_seconds,
        },
        settings.amanpay_secret_key,
        proto.AMANPAY_HEADER,
        Message.ORDER_CREATE,
    )
    if reply.refused:
        return AmanpayOrder(ok=False, error=proto.AMANPAY_REFUSAL)
    amount: Decimal = to_money(inp.amount)
    order: proto.OrderCreated = _checked(
        reply,
        settings.amanpay_secret_key,
        Message.ORDER_CREATED,
        lambda data: proto.read_order_created(
            data, inp.payment_id, amount, inp.method, settings.amanpay_base_url
        ),
        retryable=True,
    )
    return AmanpayOrder(
        ok=True, code=order.code, expires_at=order.expires_at, redirect_url=order.redirect_url
    )


@activity.defn
async def cancel_order(payment_id: str) -> str:
    """Cancels an unpaid order (cash code); returns Amanpay's status after the call."""
    settings = get_settings()
    reply = await _post(
        f"{settings.amanpay_base_url.rstrip('/')}/api/orders/{payment_id}/cancel",
        {"merchant_id": settings.amanpay_merchant_id, "order_id": payment_id},
        settings.amanpay_secret_key,
        proto.AMANPAY_HEADER,
        Message.ORDER_CANCEL,
    )
    if reply.refused:
        return proto.refusal_reason(reply.data) or "refused"
    status: str = _checked(
        reply,
        settings.amanpay_secret_key,
        Message.ORDER_CANCEL_RESULT,
        lambda data: proto.read_order_cancel_result(data, payment_id),
        retryable=True,
    )
    return status


def _paydirect_url(path: str) -> str:
    return f"{get_settings().paydirect_base_url.rstrip('/')}/api/authorizations{path}"


@activity.defn
async def paydirect_start(inp: PayDirectStartInput) -> PayDirectStart:
    settings = get_settings()
    reply = await _post(
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
    auth_ref, attempts_left = _checked(
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
    reply = await _post(
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
    attempts: int = _checked(
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
    reply = await _post(
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
    verdict: proto.OtpVerdict = _checked(
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
