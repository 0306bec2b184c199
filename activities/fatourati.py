"""CMI Fatourati adapter: create and cancel the bill reference (its e-mails are in activities/mail.py).

Every call is signed (portnet.protocols.fatourati) and idempotent: CMI keys a token by our order id,
so a retried creation returns the same reference; cancelling twice is harmless. Every answer is
checked field by field, bound to what we asked (order, amount, expiry, reference), then its
signature is verified: an answer that fails is not CMI's, and nothing of it is stored or shown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import partner_client
from activities.types import PayerInfo
from portnet.db import session_scope
from portnet.models import Emitter, Invoice, Payment, PaymentChannelData, PaymentInvoice, utcnow
from portnet.money import to_money
from portnet.protocols import fatourati as proto
from portnet.protocols.fields import MessageRejected, strict_json_object
from portnet.queries import payment_invoices
from portnet.settings import get_settings
from portnet.statuses import PaymentStatus


@dataclass
class TokenInput:
    payment_id: str
    amount: str
    expires_at: str  # ISO 8601 UTC, from workflow time
    payer: PayerInfo


@dataclass
class FatouratiToken:
    reference: str
    expires_at: str


def callback_urls(base_url: str) -> dict[str, str]:
    base = base_url.rstrip("/")
    return {
        "callbackUrl": f"{base}/api/v1/callbacks/fatourati",
        "checkStatusUrl": f"{base}/api/v1/callbacks/fatourati/status",
    }


def _refusal(response: httpx.Response) -> ApplicationError:
    # CMI's refusals are unsigned: only their status code is trusted, their text is not repeated.
    return ApplicationError(
        f"Fatourati refused: HTTP {response.status_code}", type="BusinessRefusal", non_retryable=True
    )


def _unverified(what: str, why: str, retryable: bool) -> ApplicationError:
    """An answer that fails its checks is treated as no answer from CMI at all."""
    return ApplicationError(
        f"Fatourati {what} answer rejected: {why}", type="PartnerAnswerRejected", non_retryable=not retryable
    )


def _json(response: httpx.Response) -> dict[str, object]:
    return strict_json_object(response.content)


@activity.defn
async def create_token(inp: TokenInput) -> FatouratiToken:
    settings = get_settings()
    issued, rows = await asyncio.to_thread(_token_items, inp.payment_id)  # the ledger off the event loop
    if issued is not None:
        return FatouratiToken(issued, inp.expires_at)
    fields: dict[str, object] = {
        "amount": proto.amount_text(inp.amount),
        "currency": proto.CURRENCY_MAD,
        "merchantCode": settings.fatourati_merchant_code,
        "storeId": settings.fatourati_store_id,
        "orderId": inp.payment_id,
        "expiryDate": inp.expires_at,
    }
    body = {
        **proto.signed(fields, proto.TOKEN_REQUEST, settings.fatourati_api_key),
        "customer": {"name": inp.payer.name, "email": inp.payer.email, "phone": inp.payer.phone or ""},
        # One item per invoice, as CMI's token carries them.
        "items": [
            {
                "ref": inv.number,
                "description": f"Facture {inv.number} - {em.name}",
                "amount": f"{pi.amount_ttc:.2f}",
            }
            for inv, em, pi in rows
        ],
        **callback_urls(settings.public_base_url),
    }
    client = partner_client("fatourati", timeout=20)
    response = await client.post(
        f"{settings.fatourati_base_url.rstrip('/')}/tokens",
        json=body,
        headers={"Idempotency-Key": inp.payment_id},
    )
    if response.status_code in (400, 401, 403, 422):
        raise _refusal(response)
    response.raise_for_status()
    # A forged or mismatched answer fails the attempt at once (the payer sees "indisponible"):
    # a reference we did not get from CMI must never be shown to a payer.
    try:
        answer = _json(response)
        reference = proto.read_token_response(answer, inp.payment_id, to_money(inp.amount), inp.expires_at)
    except MessageRejected as rejected:
        raise _unverified("token", str(rejected), retryable=False) from None
    if not proto.verify(answer, proto.TOKEN_RESPONSE, settings.fatourati_api_key):
        raise _unverified("token", "bad signature", retryable=False)
    await asyncio.to_thread(_keep_reference, inp, reference)
    return FatouratiToken(reference, inp.expires_at)


def _token_items(payment_id: str) -> tuple[str | None, list[tuple[Invoice, Emitter, PaymentInvoice]]]:
    """The reference already issued for the attempt, or the invoices its token will carry."""
    with session_scope() as session:
        data = session.get(PaymentChannelData, payment_id)
        if data is not None and data.partner_reference and data.expires_at is not None:
            return data.partner_reference, []
        return None, payment_invoices(session, payment_id)


def _keep_reference(inp: TokenInput, reference: str) -> None:
    with session_scope() as session:
        data = session.get(PaymentChannelData, inp.payment_id) or PaymentChannelData(
            payment_id=inp.payment_id
        )
        data.partner_reference = reference
        data.expires_at = datetime.fromisoformat(inp.expires_at).replace(tzinfo=None)
        session.add(data)
        payment = session.get(Payment, inp.payment_id)
        if payment is not None and payment.status == PaymentStatus.STARTED.value:
            payment.status = PaymentStatus.AWAITING_PAYER.value
            payment.updated_at = utcnow()
            session.add(payment)


def _reference_of(payment_id: str) -> str | None:
    with session_scope() as session:
        data = session.get(PaymentChannelData, payment_id)
        return data.partner_reference if data is not None else None


@activity.defn
async def cancel_token(payment_id: str) -> str:
    """At the deadline: the reference must not take money any more. Returns CMI's status."""
    settings = get_settings()
    reference = await asyncio.to_thread(_reference_of, payment_id)
    if not reference:
        return "NOT_FOUND"
    fields = {
        "merchantCode": settings.fatourati_merchant_code,
        "storeId": settings.fatourati_store_id,
        "tokenRef": reference,
    }
    client = partner_client("fatourati", timeout=20)
    response = await client.post(
        f"{settings.fatourati_base_url.rstrip('/')}/tokens/{reference}/cancel",
        json=proto.signed(fields, proto.TOKEN_CANCEL, settings.fatourati_api_key),
        headers={"Idempotency-Key": f"{payment_id}-cancel"},
    )
    if response.status_code == 404:
        return "NOT_FOUND"
    if response.status_code in (400, 401, 403, 422):
        raise _refusal(response)
    response.raise_for_status()
    # Retried: the token must stop taking money, and a second cancellation is harmless.
    try:
        answer = _json(response)
        status = proto.read_cancel_response(answer, reference)
    except MessageRejected as rejected:
        raise _unverified("cancel", str(rejected), retryable=True) from None
    if not proto.verify(answer, proto.TOKEN_CANCEL_RESPONSE, settings.fatourati_api_key):
        raise _unverified("cancel", "bad signature", retryable=True)
    return status


async def look_up_token(payment_id: str, reference: str) -> proto.TokenStatus:
    """What CMI holds for a reference (reconciliation): PAID with its transaction, or not.

    A read, harmless to repeat: an answer failing its checks or signature raises (retryable) and
    nothing of it is used; a reference CMI does not know is ``NOT_FOUND``.
    """
    settings = get_settings()
    fields = {
        "merchantCode": settings.fatourati_merchant_code,
        "storeId": settings.fatourati_store_id,
        "tokenRef": reference,
    }
    client = partner_client("fatourati", timeout=20)
    response = await client.post(
        f"{settings.fatourati_base_url.rstrip('/')}/tokens/{reference}/status",
        json=proto.signed(fields, proto.TOKEN_STATUS, settings.fatourati_api_key),
    )
    if response.status_code == 404:
        return proto.TokenStatus("NOT_FOUND", to_money("0"), "", "", "")
    if response.status_code in (400, 401, 403, 422):
        raise _refusal(response)
    response.raise_for_status()
    try:
        answer = _json(response)
        status = proto.read_token_status(answer, reference, payment_id)
    except MessageRejected as rejected:
        raise _unverified("token status", str(rejected), retryable=True) from None
    if not proto.verify(answer, proto.TOKEN_STATUS_RESPONSE, settings.fatourati_api_key):
        raise _unverified("token status", "bad signature", retryable=True)
    return status


ACTIVITIES: list[Callable[..., Any]] = [create_token, cancel_token]
