"""CMI hosted-page protocol (3D_PAY_HOSTING, HASH ver3), as ../shared/partners.md describes it.

Pure functions, no I/O: the activity that builds the payment form and the web endpoint that checks
CMI's callback both use them, and the unit tests pin them with vectors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from decimal import Decimal

from portnet.money import to_money

EXCLUDED_FROM_HASH = frozenset({"hash", "encoding"})
MAD_NUMERIC = "504"
APPROVED_CODE = "00"

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> list[tuple[int, int | str]]:
    """Case-insensitive natural order: ``BillToStreet2`` sorts before ``BillToStreet12``."""
    parts = _DIGITS.split(name.lower())
    return [(0, int(p)) if p.isdigit() else (1, p) for p in parts if p != ""]


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|")


def hash_plaintext(fields: Mapping[str, str], store_key: str) -> str:
    names = sorted((n for n in fields if n.lower() not in EXCLUDED_FROM_HASH), key=natural_key)
    return "".join(escape(str(fields[n]).strip()) + "|" for n in names) + escape(store_key)


def compute_hash(fields: Mapping[str, str], store_key: str) -> str:
    digest = hashlib.sha512(hash_plaintext(fields, store_key).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_hash(fields: Mapping[str, str], store_key: str) -> bool:
    """Constant-time comparison of the posted HASH against the one we compute."""
    posted = next((v for k, v in fields.items() if k.lower() == "hash"), "")
    expected = compute_hash(fields, store_key)
    return hmac.compare_digest(posted.encode("utf-8"), expected.encode("utf-8"))


def format_amount(amount: Decimal | str) -> str:
    return f"{to_money(amount):.2f}"


def build_payment_fields(
    *,
    client_id: str,
    store_key: str,
    oid: str,
    amount: Decimal | str,
    ok_url: str,
    fail_url: str,
    shop_url: str,
    callback_url: str,
    rnd: str,
    email: str,
    bill_to_name: str,
    bill_to_company: str | None = None,
    tel: str | None = None,
    lang: str = "fr",
    session_timeout: int = 900,
) -> dict[str, str]:
    """The form the browser auto-submits to CMI's gateway, HASH included."""
    fields: dict[str, str] = {
        "clientid": client_id,
        "oid": oid,
        "amount": format_amount(amount),
        "currency": MAD_NUMERIC,
        "okUrl": ok_url,
        "failUrl": fail_url,
        "shopurl": shop_url,
        "CallbackURL": callback_url,
        "storetype": "3D_PAY_HOSTING",
        "TranType": "PreAuth",
        "rnd": rnd,
        "lang": lang,
        "hashAlgorithm": "ver3",
        "encoding": "UTF-8",
        "email": email,
        "BillToName": bill_to_name,
        "AutoRedirect": "true",
        "sessionTimeout": str(max(30, min(2700, session_timeout))),
    }
    if bill_to_company:
        fields["BillToCompany"] = bill_to_company
    if tel:
        fields["tel"] = tel
    fields["HASH"] = compute_hash(fields, store_key)
    return fields


def is_approved(fields: Mapping[str, str]) -> bool:
    return fields.get("ProcReturnCode") == APPROVED_CODE and fields.get("Response", "").lower() == "approved"
