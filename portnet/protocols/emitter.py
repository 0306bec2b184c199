"""Settlement notices to emitters (ANP, MARSA MAROC...) and their acknowledgements: signatures and rules.

Both directions are JSON signed with the shared emitter key, in the ``X-PortNet-Signature`` header:
HMAC-SHA256 (lower-case hex) over the signing string::

    LABEL + "\\n" + raw body bytes

with ``LABEL`` = ``EMITTER_SETTLEMENT_NOTICE`` for our notice and ``EMITTER_ACK`` for the emitter's
acknowledgement, so that one can never be passed off as the other. The acknowledgement's fields are
checked (``read_ack``) before its signature: exactly ``notice_id`` (our payment id, a dash, the
emitter's code), ``emitter_code``, ``emitter_ack_id`` and ``acknowledged_at``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from portnet.protocols.fields import HEX_SHA256, PAYMENT_ID, FieldReader, MessageRejected

SIGNATURE_HEADER = "X-PortNet-Signature"
EMITTER_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
ACK_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


class Message(StrEnum):
    SETTLEMENT_NOTICE = "EMITTER_SETTLEMENT_NOTICE"  # us -> emitter
    ACK = "EMITTER_ACK"  # emitter -> us


def sign(key: str, message: Message, body: bytes) -> str:
    return hmac.new(key.encode(), message.value.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def verify(key: str, message: Message, body: bytes, signature: str | None) -> bool:
    if not signature or not HEX_SHA256.fullmatch(signature):
        return False
    return hmac.compare_digest(sign(key, message, body), signature.lower())


def notice_id(payment_id: str, emitter_code: str) -> str:
    return f"{payment_id}-{emitter_code}"


@dataclass(frozen=True)
class Ack:
    payment_id: str
    notice_id: str
    emitter_code: str
    emitter_ack_id: str


def read_ack(data: Mapping[str, object]) -> Ack:
    names = ("notice_id", "emitter_code", "emitter_ack_id", "acknowledged_at")
    r = FieldReader(data, allowed=names, required=names)
    code = r.text("emitter_code", EMITTER_CODE)
    nid = r.text("notice_id", max_length=100)
    payment_id, dash, rest = nid.partition("-")
    if not dash or not PAYMENT_ID.fullmatch(payment_id) or rest != code:
        raise MessageRejected("notice_id", "not one of our notices to that emitter")
    r.datetime("acknowledged_at")
    return Ack(payment_id, nid, code, r.text("emitter_ack_id", ACK_ID))
