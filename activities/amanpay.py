"""Amanpay and PayDirect adapters: signed JSON over HTTP to the partner (the sandbox in development).

Business refusals (unknown contract, CIN mismatch...) are answers, not errors; only transport
failures and 5xx raise, so Temporal retries them. The PayDirect SMS code reaches this module sealed
and is opened only to be sent to the bank: it is never logged, returned or stored here.
"""

from __future__ import annotations

from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from portnet import amanpay_protocol as proto
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


async def _post(url: str, body: dict[str, Any], key: str, header: str) -> httpx.Response:
    raw = proto.dumps(body)
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        reply = await client.post(
            url, content=raw, headers={"Content-Type": "application/json", header: proto.sign(key, raw)}
        )
    if reply.status_code >= 500 or reply.status_code in (401, 403):
        # Our configuration or their outage: retry (and alert) rather than tell the payer "refused".
        raise ApplicationError(f"partner answered HTTP {reply.status_code}")
    return reply


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
        "X-Amanpay-Signature",
    )
    data = reply.json()
    if reply.status_code >= 400:
        return AmanpayOrder(ok=False, error=str(data.get("message") or "Commande refusée par Amanpay."))
    return AmanpayOrder(
        ok=True,
        code=data.get("code"),
        expires_at=data.get("expires_at"),
        redirect_url=data.get("redirect_url"),
    )


@activity.defn
async def cancel_order(payment_id: str) -> str:
    """Cancels an unpaid order (cash code); returns Amanpay's status after the call."""
    settings = get_settings()
    reply = await _post(
        f"{settings.amanpay_base_url.rstrip('/')}/api/orders/{payment_id}/cancel",
        {"merchant_id": settings.amanpay_merchant_id, "order_id": payment_id},
        settings.amanpay_secret_key,
        "X-Amanpay-Signature",
    )
    return str(reply.json().get("status") or reply.json().get("reason") or "unknown")


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
        "X-PayDirect-Signature",
    )
    data = reply.json()
    if reply.status_code >= 400:
        return PayDirectStart(
            ok=False,
            error_code=str(data.get("reason") or "paydirect_refused"),
            error=str(data.get("message") or "Contrat PayDirect refusé."),
        )
    return PayDirectStart(ok=True, auth_ref=data["auth_ref"], attempts_left=int(data["attempts_left"]))


@activity.defn
async def paydirect_resend(auth_ref: str) -> int:
    """Asks the bank for a new SMS code; returns the tries left on it."""
    settings = get_settings()
    reply = await _post(
        _paydirect_url(f"/{auth_ref}/otp"),
        {"auth_ref": auth_ref},
        settings.paydirect_secret_key,
        "X-PayDirect-Signature",
    )
    data = reply.json()
    if reply.status_code >= 400:
        raise ApplicationError(str(data.get("message")), type="BusinessRefusal", non_retryable=True)
    return int(data["attempts_left"])


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
        "X-PayDirect-Signature",
    )
    del code
    data = reply.json()
    if reply.status_code >= 400:
        raise ApplicationError(str(data.get("message")), type="BusinessRefusal", non_retryable=True)
    result = str(data["result"])
    if result == "already_authorized":
        result = "authorized"
    return PayDirectVerdict(
        result=result,
        attempts_left=int(data.get("attempts_left", 0)),
        transaction_id=str(data.get("transaction_id") or ""),
        authorization_code=str(data.get("authorization_code") or ""),
    )
