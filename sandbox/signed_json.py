"""How Amanpay and Banque Populaire PayDirect sign their JSON, written apart from our own code.

Amanpay publishes no API, so the shapes are ours (../shared/partners.md): HMAC-SHA256 (hex, header
``X-Amanpay-Signature`` / ``X-PayDirect-Signature``) over the message type's label, a newline and
the raw body, with the merchant's key. A request is read as a JSON object and checked field by field
before its signature; successful answers are signed over exactly the bytes sent, each with its own
label, and refusals are fixed, unsigned texts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi.responses import JSONResponse, Response


def sign(key: str, label: str, body: bytes) -> str:
    return hmac.new(key.encode(), label.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def signed_reply(body: dict[str, Any], key: str, label: str, header: str, status_code: int = 200) -> Response:
    """A successful answer, signed over exactly the bytes sent."""
    raw = dumps(body)
    return Response(
        raw, status_code=status_code, media_type="application/json", headers={header: sign(key, label, raw)}
    )


class Unreadable(Exception):
    """Not a JSON object: refused before any signature is looked at."""


def json_object(request_body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(request_body)
    except ValueError:
        raise Unreadable from None
    if not isinstance(data, dict):
        raise Unreadable
    return data


def signature_ok(request_body: bytes, signature: str, key: str, label: str) -> bool:
    return hmac.compare_digest(signature.lower(), sign(key, label, request_body))


def signed_json(request_body: bytes, signature: str, key: str, label: str) -> dict[str, Any] | None:
    """The JSON object, if it is one and its signature holds; None otherwise."""
    try:
        data = json_object(request_body)
    except Unreadable:
        return None
    return data if signature_ok(request_body, signature, key, label) else None


def refused(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"result": "refused", "reason": reason, "message": message}, status_code=status)


def amount(value: Any) -> str | None:
    """``"1920.00"`` from a positive amount of two decimals at most; None for anything else."""
    try:
        parsed = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not parsed.is_finite() or parsed <= 0 or parsed != parsed.quantize(Decimal("0.01")):
        return None
    return f"{parsed:.2f}"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
