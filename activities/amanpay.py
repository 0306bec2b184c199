"""Amanpay adapter: cash payment code and Amanty orders, signed JSON over HTTP to the partner (the
sandbox in development); PayDirect (activities/paydirect.py) speaks the same signed JSON.

Business refusals (unknown contract, CIN mismatch...) are answers, not errors; only transport
failures and 5xx raise, so Temporal retries them. Refusals are unsigned: we read only their reason
code and show our own sentence. Every other answer is checked field by field, bound to what we
asked (order, amount, authorization, request), then its signature (portnet/protocols/amanpay.py):
one that fails is treated as no answer from the partner (``PartnerAnswerRejected``), so a forged
"authorized" never settles anything. Such a failure is retried where the call is idempotent (same
order, same request id), not where a retry would act twice (a new SMS code).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import partner_client
from portnet.money import to_money
from portnet.protocols import amanpay as proto
from portnet.protocols.fields import MessageRejected, strict_json_object
from portnet.settings import get_settings


@dataclass
class AmanpayOrderInput:
    payment_id: str
    method: str  # code | amanty
    amount: str
    email: str
    last_name: str = ""
    first_name: str = ""
    ttl_seconds: int = 0


@dataclass
class AmanpayOrder:
    ok: bool
    code: str | None = None
    expires_at: str | None = None
    redirect_url: str | None = None
    error: str | None = None


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


async def post(url: str, body: dict[str, Any], key: str, header: str, message: Message) -> Reply:
    raw = proto.dumps(body)
    client = partner_client("amanpay", timeout=TIMEOUT)
    response = await client.post(
        url,
        content=raw,
        headers={"Content-Type": "application/json", header: proto.sign(key, message, raw)},
    )
    if response.status_code >= 500 or response.status_code in (401, 403):
        # Our configuration or their outage: retry (and alert) rather than tell the payer "refused".
        raise ApplicationError(f"partner answered HTTP {response.status_code}")
    return Reply(response, header)


def checked(reply: Reply, key: str, message: Message, read: Any, *, retryable: bool) -> Any:
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
    reply = await post(
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
    order: proto.OrderCreated = checked(
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
    reply = await post(
        f"{settings.amanpay_base_url.rstrip('/')}/api/orders/{payment_id}/cancel",
        {"merchant_id": settings.amanpay_merchant_id, "order_id": payment_id},
        settings.amanpay_secret_key,
        proto.AMANPAY_HEADER,
        Message.ORDER_CANCEL,
    )
    if reply.refused:
        return proto.refusal_reason(reply.data) or "refused"
    status: str = checked(
        reply,
        settings.amanpay_secret_key,
        Message.ORDER_CANCEL_RESULT,
        lambda data: proto.read_order_cancel_result(data, payment_id),
        retryable=True,
    )
    return status


async def look_up_order(payment_id: str) -> proto.OrderStatus | None:
    """Amanpay's status of our order (reconciliation); None if Amanpay does not know it.

    The GET is signed over the order id; the answer is checked, bound to the order, then verified:
    one that fails raises (retryable: a read is harmless to repeat) and nothing of it is used.
    """
    settings = get_settings()
    key = settings.amanpay_secret_key
    client = partner_client("amanpay", timeout=TIMEOUT)
    response = await client.get(
        f"{settings.amanpay_base_url.rstrip('/')}/api/orders/{payment_id}",
        headers={proto.AMANPAY_HEADER: proto.sign(key, Message.ORDER_STATUS, payment_id.encode())},
    )
    if response.status_code == 404:
        return None
    if response.status_code >= 400:
        raise ApplicationError(f"Amanpay status look-up answered HTTP {response.status_code}")
    status: proto.OrderStatus = checked(
        Reply(response, proto.AMANPAY_HEADER),
        key,
        Message.ORDER_STATUS_RESULT,
        lambda data: proto.read_order_status(data, payment_id),
        retryable=True,
    )
    return status


ACTIVITIES: list[Callable[..., Any]] = [create_order, cancel_order]
