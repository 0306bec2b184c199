"""CMI Fatourati's side of the signatures, written apart from our own protocol module on purpose.

HMAC-SHA256 (hex, keyed with the store API key) over ``LABEL|field1|...|fieldN|API_KEY``, one label
per message type so that no signature passes for another type's (../shared/partners.md). If the
sandbox shared our code, a mistake of ours would be mirrored here and every test would still pass.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

CURRENCY_MAD = "504"
# (label, fields in signing order) per message type.
TOKEN_REQUEST = (
    "FATOURATI_TOKEN_REQUEST",
    ("amount", "currency", "merchantCode", "storeId", "orderId", "expiryDate"),
)
TOKEN_RESPONSE = ("FATOURATI_TOKEN_RESPONSE", ("tokenRef", "orderId", "amount", "expiryDate", "status"))
TOKEN_CANCEL = ("FATOURATI_TOKEN_CANCEL", ("merchantCode", "storeId", "tokenRef"))
TOKEN_CANCEL_RESPONSE = ("FATOURATI_TOKEN_CANCEL_RESPONSE", ("tokenRef", "status"))
CALLBACK = (
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
CALLBACK_ANSWER = (
    "FATOURATI_CALLBACK_ANSWER",
    ("tokenRef", "orderId", "transactionNumber", "receiptNumber", "status"),
)
# The merchant's token look-up (reconciliation asks it) and its answer: the paying transaction, if any.
TOKEN_STATUS = ("FATOURATI_TOKEN_STATUS", ("merchantCode", "storeId", "tokenRef"))
TOKEN_STATUS_RESPONSE = (
    "FATOURATI_TOKEN_STATUS_RESPONSE",
    ("tokenRef", "orderId", "amount", "status", "transactionNumber", "transactionDate", "channel"),
)
MessageType = tuple[str, Sequence[str]]

UNSIGNABLE = re.compile(r"[|\x00-\x1f\x7f-\x9f\u2028\u2029]")
HEX64 = re.compile(r"[0-9a-fA-F]{64}")
ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
AMOUNT = re.compile(r"(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,2})?")
REFERENCE = re.compile(r"[0-9]{13}")
ANSWER_STATUSES = ("ACCEPTED", "RECEIVED_UNAPPLIED", "RECORDED")


def sign(fields: Mapping[str, object], message: MessageType, api_key: str) -> str:
    label, names = message
    values = ["" if fields.get(name) is None else str(fields.get(name)) for name in names]
    if any(UNSIGNABLE.search(v) or len(v) > 255 for v in values):
        raise ValueError(f"{label}: a field cannot be signed")
    text = "|".join([label, *values, api_key])
    return hmac.new(api_key.encode(), text.encode(), hashlib.sha256).hexdigest()


def verify(fields: Mapping[str, object], message: MessageType, api_key: str) -> bool:
    given = fields.get("signature")
    if not isinstance(given, str) or not HEX64.fullmatch(given):
        return False
    try:
        expected = sign(fields, message, api_key)
    except ValueError:
        return False
    return hmac.compare_digest(given.lower(), expected)


def fields_ok(body: Mapping[str, object], names: Sequence[str]) -> bool:
    """CMI's own rule before any signature check: every signed field a bounded, plain string."""
    for name in (*names, "signature"):
        value = body.get(name)
        if not isinstance(value, str) or len(value) > 255 or UNSIGNABLE.search(value):
            return False
    return True
