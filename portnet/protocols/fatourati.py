"""CMI Fatourati's messages: which fields each carries, their rules, and how each is signed.

Signing string, the same for every message type (HMAC-SHA256 keyed with the store API key, hex)::

    LABEL|field1|field2|...|fieldN|API_KEY

``LABEL`` names the message type, so a signature made for one type never verifies as another. No
field may contain ``|`` or a control character: ``sign`` refuses to sign one, the readers reject
one, so the joined string has a single reading. The fields, in signing order:

=================================  ============================================================  =====
label                              fields                                                        signer
=================================  ============================================================  =====
FATOURATI_TOKEN_REQUEST            amount, currency, merchantCode, storeId, orderId, expiryDate  us
FATOURATI_TOKEN_RESPONSE           tokenRef, orderId, amount, expiryDate, status                 CMI
FATOURATI_TOKEN_CANCEL             merchantCode, storeId, tokenRef                               us
FATOURATI_TOKEN_CANCEL_RESPONSE    tokenRef, status                                              CMI
FATOURATI_CALLBACK                 tokenRef, orderId, totalAmount, currency, transactionDate,    CMI
                                   transactionNumber, channel, operator, decisionCode,
                                   merchantCode, storeId
FATOURATI_CALLBACK_ANSWER          tokenRef, orderId, transactionNumber, receiptNumber, status   us
FATOURATI_STATUS_REQUEST           merchantCode, storeId, tokenRef                               CMI
FATOURATI_STATUS_ANSWER            tokenRef, status                                              us
FATOURATI_TOKEN_STATUS             merchantCode, storeId, tokenRef                               us
FATOURATI_TOKEN_STATUS_RESPONSE    tokenRef, orderId, amount, status, transactionNumber,         CMI
                                   transactionDate, channel
=================================  ============================================================  =====

Every field is checked (``read_*``) before the signature is: a 13-digit reference, our order id,
an amount in dirhams with two decimals at most, currency 504, our merchant code and store id, known
decision codes and statuses. Answers on an error path (either side) are fixed texts, never signed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from portnet.protocols.fields import HEX_SHA256, FieldReader, MessageRejected, is_safe_text

CURRENCY_MAD = "504"
REFERENCE = re.compile(r"[0-9]{13}")
TRANSACTION_NUMBER = re.compile(r"[A-Za-z0-9_-]{1,40}")
CHANNEL = re.compile(r"[a-z0-9_]{1,32}")
DECISION_PAID, DECISION_REFUSED = "0", "1"
STATUSES = ("PAID", "PENDING", "EXPIRED", "CANCELLED", "NOT_FOUND")
# Our answers to a callback (signed, 200) and their receipts: REC-<payment> or ENC-<unapplied id>.
ANSWER_STATUSES = ("ACCEPTED", "RECEIVED_UNAPPLIED", "RECORDED")
RECEIPT = re.compile(r"(?:(?:REC|ENC)-[A-Za-z0-9-]{0,40})?")


@dataclass(frozen=True)
class MessageType:
    label: str
    fields: tuple[str, ...]


TOKEN_REQUEST = MessageType(
    "FATOURATI_TOKEN_REQUEST", ("amount", "currency", "merchantCode", "storeId", "orderId", "expiryDate")
)
TOKEN_RESPONSE = MessageType(
    "FATOURATI_TOKEN_RESPONSE", ("tokenRef", "orderId", "amount", "expiryDate", "status")
)
TOKEN_CANCEL = MessageType("FATOURATI_TOKEN_CANCEL", ("merchantCode", "storeId", "tokenRef"))
TOKEN_CANCEL_RESPONSE = MessageType("FATOURATI_TOKEN_CANCEL_RESPONSE", ("tokenRef", "status"))
CALLBACK = MessageType(
    "FATOURATI_CALLBACK",
    (
        "tokenRef",
        "orderId",
        "totalAmount",
        "currency",
        "transactionDate",
        "transactionNumber",
        "channel",
        "operator",
        "decisionCode",
        "merchantCode",
        "storeId",
    ),
)
CALLBACK_ANSWER = MessageType(
    "FATOURATI_CALLBACK_ANSWER", ("tokenRef", "orderId", "transactionNumber", "receiptNumber", "status")
)
STATUS_REQUEST = MessageType("FATOURATI_STATUS_REQUEST", ("merchantCode", "storeId", "tokenRef"))
STATUS_ANSWER = MessageType("FATOURATI_STATUS_ANSWER", ("tokenRef", "status"))
TOKEN_STATUS = MessageType("FATOURATI_TOKEN_STATUS", ("merchantCode", "storeId", "tokenRef"))
TOKEN_STATUS_RESPONSE = MessageType(
    "FATOURATI_TOKEN_STATUS_RESPONSE",
    ("tokenRef", "orderId", "amount", "status", "transactionNumber", "transactionDate", "channel"),
)


def amount_text(value: str | Decimal) -> str:
    return f"{Decimal(str(value)):.2f}"


def signing_string(fields: Mapping[str, object], message: MessageType, api_key: str) -> str:
    values = []
    for name in message.fields:
        value = fields.get(name)
        text = "" if value is None else str(value)
        if not is_safe_text(text):
            # Never sign an ambiguous string: this is what made the old error answer an oracle.
            raise ValueError(f"{message.label}: field {name} cannot be signed")
        values.append(text)
    return "|".join([message.label, *values, api_key])


def sign(fields: Mapping[str, object], message: MessageType, api_key: str) -> str:
    text = signing_string(fields, message, api_key)
    return hmac.new(api_key.encode(), text.encode(), hashlib.sha256).hexdigest()


def verify(fields: Mapping[str, object], message: MessageType, api_key: str) -> bool:
    """Constant-time check of ``fields["signature"]`` (hex, either case) for that message type."""
    given = fields.get("signature")
    if not isinstance(given, str) or not HEX_SHA256.fullmatch(given):
        return False
    try:
        expected = sign(fields, message, api_key)
    except ValueError:
        return False
    return hmac.compare_digest(given.lower(), expected)


def signed(fields: Mapping[str, object], message: MessageType, api_key: str) -> dict[str, object]:
    return {**fields, "signature": sign(fields, message, api_key)}


# --- what CMI sends us -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentCallback:
    """A callback whose every field passed its rule; its signature is checked next."""

    token_ref: str
    order_id: str
    total_amount: Decimal
    transaction_date: str
    transaction_number: str
    channel: str
    decision_code: str

    @property
    def paid(self) -> bool:
        return self.decision_code == DECISION_PAID


def _reader(data: Mapping[str, object], message: MessageType) -> FieldReader:
    names = (*message.fields, "signature")
    return FieldReader(data, allowed=names, required=names)


def read_callback(data: Mapping[str, object], merchant_code: str, store_id: str) -> PaymentCallback:
    r = _reader(data, CALLBACK)
    callback = PaymentCallback(
        token_ref=r.text("tokenRef", REFERENCE),
        order_id=r.payment_id("orderId"),
        total_amount=r.amount("totalAmount"),
        transaction_date=r.text("transactionDate", max_length=40),
        transaction_number=r.text("transactionNumber", TRANSACTION_NUMBER),
        channel=r.text("channel", CHANNEL),
        decision_code=r.one_of("decisionCode", (DECISION_PAID, DECISION_REFUSED)),
    )
    r.datetime("transactionDate")
    r.text("operator", max_length=80)
    r.equal("currency", CURRENCY_MAD)
    r.equal("merchantCode", merchant_code)
    r.equal("storeId", store_id)
    r.text("signature", HEX_SHA256)
    return callback


def read_status_request(data: Mapping[str, object], merchant_code: str, store_id: str) -> str:
    """CMI's check-status call; returns the reference asked about."""
    r = _reader(data, STATUS_REQUEST)
    r.equal("merchantCode", merchant_code)
    r.equal("storeId", store_id)
    r.text("signature", HEX_SHA256)
    return r.text("tokenRef", REFERENCE)


def read_token_response(data: Mapping[str, object], order_id: str, amount: Decimal, expires_at: str) -> str:
    """CMI's answer to our token creation, bound to what we asked; returns the reference."""
    r = _reader(data, TOKEN_RESPONSE)
    reference = r.text("tokenRef", REFERENCE)
    r.equal("orderId", order_id)
    if r.amount("amount") != amount:
        raise MessageRejected("amount", "not the amount asked")
    if r.datetime("expiryDate") != datetime.fromisoformat(expires_at):
        raise MessageRejected("expiryDate", "not the expiry asked")
    r.equal("status", "PENDING")
    r.text("signature", HEX_SHA256)
    return reference


def read_cancel_response(data: Mapping[str, object], token_ref: str) -> str:
    """CMI's answer to our cancellation; returns the token's status after it."""
    r = _reader(data, TOKEN_CANCEL_RESPONSE)
    r.equal("tokenRef", token_ref)
    r.text("signature", HEX_SHA256)
    return r.one_of("status", STATUSES)


@dataclass(frozen=True)
class TokenStatus:
    """CMI's answer to our look-up of a token: its status and, once paid, the paying transaction."""

    status: str
    amount: Decimal
    transaction_number: str
    transaction_date: str
    channel: str

    @property
    def paid(self) -> bool:
        return self.status == "PAID" and bool(self.transaction_number)


def read_token_status(data: Mapping[str, object], token_ref: str, order_id: str) -> TokenStatus:
    """Our look-up's answer (reconciliation), bound to the token and order we asked about."""
    r = _reader(data, TOKEN_STATUS_RESPONSE)
    r.equal("tokenRef", token_ref)
    r.equal("orderId", order_id)
    status = r.one_of("status", STATUSES)
    transaction_number = r.text("transactionNumber", max_length=40)
    if transaction_number and not TRANSACTION_NUMBER.fullmatch(transaction_number):
        raise MessageRejected("transactionNumber", "bad format")
    if status == "PAID" and not transaction_number:
        raise MessageRejected("transactionNumber", "missing for a paid token")
    channel = r.text("channel", max_length=32)
    if channel and not CHANNEL.fullmatch(channel):
        raise MessageRejected("channel", "bad format")
    transaction_date = r.text("transactionDate", max_length=40)
    if transaction_date:
        r.datetime("transactionDate")
    r.text("signature", HEX_SHA256)
    return TokenStatus(status, r.amount("amount"), transaction_number, transaction_date, channel)


# --- what we answer --------------------------------------------------------------------------------


def callback_answer(
    callback: PaymentCallback, status: str, receipt: str | None, api_key: str
) -> dict[str, object]:
    """Our signed answer to a genuine callback: the status is signed with the rest."""
    if status not in ANSWER_STATUSES or not RECEIPT.fullmatch(receipt or ""):
        raise ValueError(f"not an answer we sign: {status} {receipt!r}")
    body: dict[str, object] = {
        "tokenRef": callback.token_ref,
        "orderId": callback.order_id,
        "transactionNumber": callback.transaction_number,
        "receiptNumber": receipt or "",
        "status": status,
    }
    return signed(body, CALLBACK_ANSWER, api_key)


def status_answer(token_ref: str, status: str, api_key: str) -> dict[str, object]:
    if status not in STATUSES or not REFERENCE.fullmatch(token_ref):
        raise ValueError(f"not a status answer we sign: {status}")
    return signed({"tokenRef": token_ref, "status": status}, STATUS_ANSWER, api_key)
