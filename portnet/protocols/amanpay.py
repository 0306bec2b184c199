"""Amanpay and PayDirect wire rules shared by the adapter (activities) and the callback endpoint.

Bodies are JSON. Each one is signed, in a header (``X-Amanpay-Signature`` / ``X-PayDirect-Signature``),
with HMAC-SHA256 (lower-case hex) keyed with the partner's key over the signing string::

    LABEL + "\\n" + raw body bytes

``LABEL`` names the message type (``Message`` below), so a signature made for one message (say an
order's creation answer) never verifies as another (a paid notification). Requests and successful
answers are signed, both ways; refusals (4xx) are fixed texts, unsigned, of which we read only the
``reason`` code from a closed list and show our own French sentence for it.

Every field is checked (``read_*``) before the signature is: our merchant id and order id, the
amount asked, known statuses and results, bounded ids, strings only, no separator or control
character, no unknown field.

The PayDirect SMS code is sealed (Fernet: AES-128-CBC + HMAC-SHA256, key derived from SECRET_KEY) by
the web layer the moment it arrives, so that the workflow, its Update arguments, its activity inputs
and Temporal's history only ever hold ciphertext bound to one payment; the PayDirect adapter opens
it only to send it to the bank, which compares it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken

from portnet.protocols.fields import HEX_SHA256, FieldReader, MessageRejected

OTP_FORMAT = re.compile(r"^[0-9]{6}\Z")
# What a sealed code looks like to the workflow's validator (url-safe base64 Fernet token).
SEALED_FORMAT = re.compile(r"^gAAAAA[A-Za-z0-9_\-=]{40,400}\Z")

AMANPAY_HEADER = "X-Amanpay-Signature"
PAYDIRECT_HEADER = "X-PayDirect-Signature"


class Message(StrEnum):
    """The first signed element of each message type."""

    NOTIFICATION = "AMANPAY_NOTIFICATION"  # Amanpay -> us
    ORDER_CREATE = "AMANPAY_ORDER_CREATE"  # us -> Amanpay
    ORDER_CREATED = "AMANPAY_ORDER_CREATED"  # its answer
    ORDER_CANCEL = "AMANPAY_ORDER_CANCEL"
    ORDER_CANCEL_RESULT = "AMANPAY_ORDER_CANCEL_RESULT"
    ORDER_STATUS = "AMANPAY_ORDER_STATUS"  # GET: the signed body is the order id
    ORDER_STATUS_RESULT = "AMANPAY_ORDER_STATUS_RESULT"
    AUTHORIZATION_CREATE = "PAYDIRECT_AUTHORIZATION_CREATE"  # us -> PayDirect
    AUTHORIZATION = "PAYDIRECT_AUTHORIZATION"  # its answer
    OTP_RESEND = "PAYDIRECT_OTP_RESEND"
    OTP_SENT = "PAYDIRECT_OTP_SENT"
    OTP_VERIFY = "PAYDIRECT_OTP_VERIFY"
    OTP_VERDICT = "PAYDIRECT_OTP_VERDICT"


def sign(key: str, message: Message, body: bytes) -> str:
    return hmac.new(key.encode(), message.value.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def verify(key: str, message: Message, body: bytes, signature: str | None) -> bool:
    if not signature or not HEX_SHA256.fullmatch(signature):
        return False
    return hmac.compare_digest(sign(key, message, body), signature.lower())


def dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


# --- field rules --------------------------------------------------------------------------------

ORDER_STATUSES = ("pending", "paid", "cancelled", "expired")
NOTICE_STATUSES = ("paid", "refused", "cancelled")
METHODS = ("code", "amanty")
EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
TRANSACTION_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
REASON = re.compile(r"[a-z0-9_]{1,64}")
CHANNEL = re.compile(r"[a-z0-9_]{1,32}")
CASH_CODE = re.compile(r"[0-9]{2} [0-9]{4} [0-9]{3}-[0-9]{3}")
AUTH_REF = re.compile(r"[A-Za-z0-9_-]{4,40}")
AUTHORIZATION_CODE = re.compile(r"[A-Za-z0-9]{1,12}")
REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
VERDICTS = ("authorized", "already_authorized", "wrong", "dead", "expired")

# Refusals are unsigned: only their reason code is read, and the payer sees our sentence for it.
AMANPAY_REFUSAL = "Commande refusée par Amanpay."
PAYDIRECT_REFUSALS = {
    "unknown_contract": "Numéro de contrat PayDirect inconnu.",
    "contract_mismatch": "Le CIN ne correspond pas au contrat PayDirect.",
    "phone_mismatch": "Le numéro de téléphone n'est pas celui du contrat.",
    "invalid_request": "Demande PayDirect refusée par la banque.",
}
PAYDIRECT_REFUSAL = ("paydirect_refused", "Contrat PayDirect refusé.")


@dataclass(frozen=True)
class Notification:
    """Amanpay's notification, every field checked; its signature is checked next."""

    order_id: str
    amount: Decimal
    status: str
    event_id: str
    transaction_id: str
    paid_at: str
    channel: str
    reason: str

    @property
    def amount_text(self) -> str:
        return f"{self.amount:.2f}"


def read_notification(data: Mapping[str, object], merchant_id: str) -> Notification:
    r = FieldReader(
        data,
        allowed=(
            "merchant_id",
            "order_id",
            "amount",
            "method",
            "status",
            "transaction_id",
            "paid_at",
            "event_id",
            "channel",
            "wallet",
            "reason",
        ),
        required=("merchant_id", "order_id", "amount", "status", "event_id", "transaction_id"),
    )
    r.equal("merchant_id", merchant_id)
    status = r.one_of("status", NOTICE_STATUSES)
    transaction_id = r.text("transaction_id", max_length=40)
    if transaction_id and not TRANSACTION_ID.fullmatch(transaction_id):
        raise MessageRejected("transaction_id", "bad format")
    if status == "paid" and not transaction_id:
        raise MessageRejected("transaction_id", "missing for a payment")
    if "method" in data:
        r.one_of("method", METHODS)
    r.datetime("paid_at", optional=True)
    r.text("wallet", max_length=254, optional=True)
    reason = r.text("reason", max_length=64, optional=True)
    if reason and not REASON.fullmatch(reason):
        raise MessageRejected("reason", "bad format")
    channel = r.text("channel", max_length=32, optional=True)
    if channel and not CHANNEL.fullmatch(channel):
        raise MessageRejected("channel", "bad format")
    return Notification(
        order_id=r.payment_id("order_id"),
        amount=r.amount("amount"),
        status=status,
        event_id=r.text("event_id", EVENT_ID),
        transaction_id=transaction_id,
        paid_at=r.text("paid_at", max_length=40, optional=True),
        channel=channel,
        reason=reason,
    )


@dataclass(frozen=True)
class OrderCreated:
    code: str | None
    expires_at: str | None
    redirect_url: str | None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def read_order_created(
    data: Mapping[str, object], order_id: str, amount: Decimal, method: str, base_url: str
) -> OrderCreated:
    """Amanpay's answer to our order, bound to what we asked (order, amount, method, its own site)."""
    if method == "code":
        r = FieldReader(
            data,
            allowed=("order_id", "status", "amount", "code", "expires_at"),
            required=("order_id", "status", "amount", "code", "expires_at"),
        )
    else:
        r = FieldReader(
            data,
            allowed=("order_id", "status", "amount", "redirect_url"),
            required=("order_id", "status", "amount", "redirect_url"),
        )
    r.equal("order_id", order_id)
    r.equal("status", "pending")
    if r.amount("amount") != amount:
        raise MessageRejected("amount", "not the amount asked")
    if method == "code":
        r.datetime("expires_at")
        return OrderCreated(
            code=r.text("code", CASH_CODE), expires_at=r.text("expires_at"), redirect_url=None
        )
    url = r.text("redirect_url", max_length=500)
    # The payer's browser goes there: Amanpay's own site, nowhere else.
    if not url.lower().startswith(("https://", "http://")) or _origin(url) != _origin(base_url):
        raise MessageRejected("redirect_url", "not Amanpay's site")
    return OrderCreated(code=None, expires_at=None, redirect_url=url)


def read_order_cancel_result(data: Mapping[str, object], order_id: str) -> str:
    r = FieldReader(data, allowed=("order_id", "status"), required=("order_id", "status"))
    r.equal("order_id", order_id)
    return r.one_of("status", ORDER_STATUSES)


@dataclass(frozen=True)
class OrderStatus:
    """Amanpay's answer to our status look-up (reconciliation): the order's state, and its payment."""

    status: str
    amount: Decimal
    transaction_id: str

    @property
    def paid(self) -> bool:
        return self.status == "paid" and bool(self.transaction_id)


def read_order_status(data: Mapping[str, object], order_id: str) -> OrderStatus:
    """Bound to the order asked about; ``transaction_id`` and ``expires_at`` are null until set."""
    names = ("order_id", "status", "amount", "method", "transaction_id", "expires_at")
    r = FieldReader(data, allowed=names, required=("order_id", "status", "amount"))
    r.equal("order_id", order_id)
    status = r.one_of("status", ORDER_STATUSES)
    if data.get("method") is not None:
        r.one_of("method", METHODS)
    if data.get("expires_at") is not None:
        r.datetime("expires_at")
    transaction_id = "" if data.get("transaction_id") is None else r.text("transaction_id", TRANSACTION_ID)
    if status == "paid" and not transaction_id:
        raise MessageRejected("transaction_id", "missing for a paid order")
    return OrderStatus(status, r.amount("amount"), transaction_id)


_AUTHORIZATION_FIELDS = (
    "result",
    "auth_ref",
    "order_id",
    "status",
    "otp_expires_at",
    "attempts_left",
    "sends",
    "transaction_id",
    "authorization_code",
)


def _authorization(r: FieldReader) -> None:
    r.one_of("status", ("otp_sent", "authorized"))
    r.datetime("otp_expires_at")
    r.integer("sends", 0, 1000)
    if "transaction_id" in r.fields:
        r.text("transaction_id", TRANSACTION_ID)
    if "authorization_code" in r.fields:
        r.text("authorization_code", AUTHORIZATION_CODE)


def read_authorization(data: Mapping[str, object], order_id: str) -> tuple[str, int]:
    """PayDirect's answer to our authorization request: (its reference, tries left on the code)."""
    r = FieldReader(data, allowed=_AUTHORIZATION_FIELDS, required=_AUTHORIZATION_FIELDS[:7])
    r.equal("result", "otp_sent")
    r.equal("order_id", order_id)
    _authorization(r)
    return r.text("auth_ref", AUTH_REF), r.integer("attempts_left", 0, 10)


def read_otp_sent(data: Mapping[str, object], auth_ref: str) -> int:
    """PayDirect's answer to a new-code request: the tries left on the new code."""
    r = FieldReader(data, allowed=_AUTHORIZATION_FIELDS, required=_AUTHORIZATION_FIELDS[:7])
    r.equal("result", "otp_sent")
    r.equal("auth_ref", auth_ref)
    r.payment_id("order_id")
    _authorization(r)
    return r.integer("attempts_left", 0, 10)


@dataclass(frozen=True)
class OtpVerdict:
    result: str  # authorized | wrong | dead | expired
    attempts_left: int
    transaction_id: str
    authorization_code: str


def read_otp_verdict(data: Mapping[str, object], auth_ref: str, request_id: str) -> OtpVerdict:
    """The bank's verdict on one code, bound to that authorization and that request."""
    r = FieldReader(
        data,
        allowed=(*_AUTHORIZATION_FIELDS, "request_id"),
        required=(*_AUTHORIZATION_FIELDS[:7], "request_id"),
    )
    result = r.one_of("result", VERDICTS)
    r.equal("auth_ref", auth_ref)
    r.equal("request_id", request_id)
    r.payment_id("order_id")
    _authorization(r)
    attempts_left = r.integer("attempts_left", 0, 10)
    if result in ("authorized", "already_authorized"):
        r.equal("status", "authorized")
        return OtpVerdict(
            "authorized",
            attempts_left,
            r.text("transaction_id", TRANSACTION_ID),
            r.text("authorization_code", AUTHORIZATION_CODE),
        )
    return OtpVerdict(result, attempts_left, "", "")


def refusal_reason(data: object) -> str | None:
    """The reason code of an unsigned refusal, if it is one we know a sentence for."""
    if isinstance(data, dict):
        reason = data.get("reason")
        if isinstance(reason, str) and REASON.fullmatch(reason):
            return reason
    return None


# --- the PayDirect SMS code ---------------------------------------------------------------------


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"portnet/paydirect-otp-seal/v1|" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal_otp(secret_key: str, payment_id: str, code: str) -> str:
    """Only for a code that matches OTP_FORMAT; the payment id is sealed with it (no use elsewhere)."""
    return _fernet(secret_key).encrypt(f"{payment_id}:{code}".encode()).decode()


def open_otp(secret_key: str, payment_id: str, sealed: str, max_age_seconds: int = 3600) -> str | None:
    try:
        plain = _fernet(secret_key).decrypt(sealed.encode(), ttl=max_age_seconds).decode()
    except (InvalidToken, ValueError):
        return None
    bound_to, _, code = plain.partition(":")
    if not hmac.compare_digest(bound_to, payment_id) or not OTP_FORMAT.match(code):
        return None
    return code
