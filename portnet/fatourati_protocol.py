"""CMI Fatourati's signatures, as ../shared/partners.md describes them.

Every request and callback is signed with HMAC-SHA256 (hex). The message is the business fields
joined with ``|``, followed by the store API key (``f1|f2|...|fn|KEY``); the same key is the HMAC
key. The order of the fields is fixed per message type, below, and shared with CMI.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from decimal import Decimal

CURRENCY_MAD = "504"

# Which fields, in which order, each message signs.
TOKEN_REQUEST = ("amount", "currency", "merchantCode", "storeId", "orderId", "expiryDate")
TOKEN_RESPONSE = ("tokenRef", "orderId", "amount", "expiryDate")
TOKEN_CANCEL = ("merchantCode", "storeId", "tokenRef")
CALLBACK = (
    "tokenRef",
    "orderId",
    "totalAmount",
    "currency",
    "transactionDate",
    "transactionNumber",
    "channel",
    "decisionCode",
    "merchantCode",
    "storeId",
)
CALLBACK_ANSWER = ("tokenRef", "orderId", "transactionNumber", "receiptNumber")
STATUS_REQUEST = ("merchantCode", "storeId", "tokenRef")
STATUS_ANSWER = ("tokenRef", "status")

STATUSES = ("PAID", "PENDING", "EXPIRED", "CANCELLED", "NOT_FOUND")


def amount_text(value: str | Decimal) -> str:
    return f"{Decimal(str(value)):.2f}"


def sign(fields: Mapping[str, object], order: Sequence[str], api_key: str) -> str:
    message = "|".join([*(str(fields.get(name, "") or "") for name in order), api_key])
    return hmac.new(api_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify(fields: Mapping[str, object], order: Sequence[str], api_key: str) -> bool:
    given = str(fields.get("signature", "") or "")
    return hmac.compare_digest(given.lower(), sign(fields, order, api_key))


def signed(fields: Mapping[str, object], order: Sequence[str], api_key: str) -> dict[str, object]:
    return {**fields, "signature": sign(fields, order, api_key)}
