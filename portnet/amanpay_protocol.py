"""Amanpay and PayDirect wire rules shared by the adapter (activities) and the callback endpoint.

Bodies are JSON signed with HMAC-SHA256 (hex) over the raw bytes with the partner's key; we compare
signatures in constant time. The PayDirect SMS code is sealed (Fernet: AES-128-CBC + HMAC-SHA256,
key derived from SECRET_KEY) by the web layer the moment it arrives, so that the workflow, its
Update arguments, its activity inputs and Temporal's history only ever hold ciphertext bound to one
payment; the PayDirect adapter opens it only to send it to the bank, which compares it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

OTP_FORMAT = re.compile(r"^[0-9]{6}$")
# What a sealed code looks like to the workflow's validator (url-safe base64 Fernet token).
SEALED_FORMAT = re.compile(r"^gAAAAA[A-Za-z0-9_\-=]{40,400}$")


def sign(key: str, body: bytes) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def verify(key: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(key, body), signature or "")


def dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


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
