"""A partner's call as we keep it: the body read with a cap, card fields taken out, and its hash.

Callbacks come from the internet unauthenticated until their signature is checked, so the body is
streamed and reading stops past ``BODY_CAP`` (16 KB; the largest genuine callback, CMI's, is about
2 KB): a longer body is refused with 413 and only its first 16 KB are kept. ``Content-Length`` is not
trusted: it may be absent (chunked) or lie. Server-side, uvicorn discards what we did not read once
the answer is sent, without holding it.

What is kept is the body as received, unless it carries a card field (``NEVER_STORED``): then that
field is taken out (or, if the body cannot be parsed, every digit is masked), so that no card
number or code is ever written, not even hashed. ``sha256`` is the SHA-256 of exactly the kept bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

from starlette.requests import ClientDisconnect, Request

BODY_CAP = 16 * 1024
# Fields that identify the payer's card or secrets and are never kept, even if a partner sent them.
NEVER_STORED = frozenset(
    {"pan", "cv2", "cvv", "ecom_payment_card_expdate_month", "ecom_payment_card_expdate_year"}
)
_CARD_NAME = re.compile(
    r"(?<![a-z0-9_])(?:pan|cv2|cvv|ecom_payment_card_expdate_month|ecom_payment_card_expdate_year)(?![a-z0-9_])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RawBody:
    kept: bytes  # what we store: at most BODY_CAP bytes, card fields out
    sha256: str  # of ``kept``
    truncated: bool  # the body went past BODY_CAP: refused with 413
    scrubbed: bool  # a card field was taken out
    received: bytes  # the bytes read (at most BODY_CAP), to parse; never stored as such


async def read_capped(request: Request, cap: int = BODY_CAP) -> RawBody:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                break
    except ClientDisconnect:
        pass
    received = b"".join(chunks)[:cap]
    kept = without_card_fields(received)
    return RawBody(
        kept=kept,
        sha256=hashlib.sha256(kept).hexdigest(),
        truncated=size > cap,
        scrubbed=kept != received,
        received=received,
    )


def _drop_card_keys(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in NEVER_STORED:
                changed = True
                continue
            out[key], inner = _drop_card_keys(item)
            changed = changed or inner
        return out, changed
    if isinstance(value, list):
        items = [_drop_card_keys(item) for item in value]
        return [item for item, _ in items], any(changed for _, changed in items)
    return value, False


def without_card_fields(body: bytes) -> bytes:
    text = body.decode("utf-8", errors="replace")
    if not _CARD_NAME.search(unquote_plus(text)) and not _CARD_NAME.search(_json_unescaped(text)):
        return body
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict | list):
        cleaned, changed = _drop_card_keys(data)
        return json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")).encode() if changed else body
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        pairs = None
    if pairs is not None:
        kept = [(k, v) for k, v in pairs if k.lower() not in NEVER_STORED]
        return urlencode(kept).encode() if len(kept) != len(pairs) else body
    # Neither JSON nor a form (cut at the cap, or garbage) and a card field's name in it.
    return re.sub(rb"[0-9]", b"#", body)


def _json_unescaped(text: str) -> str:
    """``\\u0070an`` is ``pan`` to a JSON parser: look at names as the parser would."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
