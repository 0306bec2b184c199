"""CMI hosted-page protocol (3D_PAY_HOSTING, HASH ver3), as ../shared/partners.md describes it.

Pure functions, no I/O: the activity that builds the payment form and the web endpoint that checks
CMI's callback both use them, and the unit tests pin them with vectors.

Signing string (HASH ver3), for the form we post and for CMI's callback alike: every field except
``HASH`` and ``encoding``, names sorted case-insensitively in natural order, each value trimmed and
escaped (``\\`` -> ``\\\\``, then ``|`` -> ``\\|``), joined as ``value|value|...|`` followed by the
escaped store key; SHA-512, base64 of the raw digest.

The hash covers the values only, in the order of the names: a renamed field, a padded value or an
unexpected field could keep it valid. So before the hash is checked, ``read_callback`` holds the
callback to a closed list of names (exact spelling), each with its rule: our ``clientid``, our
order id, an amount with two decimals, currency 504, known ``Response`` values, no leading or
trailing space (CMI trims before hashing), no ``|`` and no control character anywhere. The form we
build obeys the same rules (``clean_text``), so a genuine callback always passes them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from portnet.money import to_money
from portnet.protocols.fields import PAYMENT_ID, FieldReader, MessageRejected

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


_UNSAFE_OR_SPACE = re.compile(r"\s*[|\x00-\x1f\x7f-\x9f\u2028\u2029]+\s*")


def clean_text(value: str, max_length: int = 255) -> str:
    """A payer-typed value as we put it in the form: CMI echoes it back in the signed callback,
    which must pass ``read_callback`` (no ``|``, no control character, trimmed, bounded)."""
    return _UNSAFE_OR_SPACE.sub(" ", value).strip()[:max_length].strip()


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
        "email": clean_text(email, 254),
        "BillToName": clean_text(bill_to_name),
        "AutoRedirect": "true",
        "sessionTimeout": str(max(30, min(2700, session_timeout))),
    }
    if bill_to_company and clean_text(bill_to_company):
        fields["BillToCompany"] = clean_text(bill_to_company)
    if tel and clean_text(tel, 32):
        fields["tel"] = clean_text(tel, 32)
    fields["HASH"] = compute_hash(fields, store_key)
    return fields


def is_approved(fields: Mapping[str, str]) -> bool:
    return fields.get("ProcReturnCode") == APPROVED_CODE and fields.get("Response", "").lower() == "approved"


# --- CMI's callback: the closed list of fields and their rules ------------------------------------

_URL = re.compile(r"https?://[^\s]{1,500}")
_DIGITS_2 = re.compile(r"[0-9]{2}")
_TRANS_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_AUTH_CODE = re.compile(r"[A-Za-z0-9]{0,12}")
_HOST_REF = re.compile(r"[A-Za-z0-9]{0,32}")
_MD_STATUS = re.compile(r"[0-9]?")
_TRX_DATE = re.compile(r"(?:[0-9]{8} [0-9]{2}:[0-9]{2}:[0-9]{2})?")
_MASKED_PAN = re.compile(r"(?:[0-9]{4,6}[*Xx]{2,9}[0-9]{4})?")
_RND = re.compile(r"[A-Za-z0-9+/=_-]{1,128}")
_HASH = re.compile(r"[A-Za-z0-9+/]{86}==")
_SESSION_TIMEOUT = re.compile(r"[0-9]{1,5}")

# Each field CMI posts back (the request's fields plus the result), with its rule.
CALLBACK_RULES: dict[str, re.Pattern[str] | tuple[str, ...] | int] = {
    # ours, echoed
    "clientid": 64,
    "oid": PAYMENT_ID,
    "amount": 16,
    "currency": (MAD_NUMERIC,),
    "okUrl": _URL,
    "failUrl": _URL,
    "shopurl": _URL,
    "CallbackURL": _URL,
    "storetype": ("3D_PAY_HOSTING",),
    "TranType": ("PreAuth", "Auth"),
    "rnd": _RND,
    "lang": ("fr", "ar", "en"),
    "hashAlgorithm": ("ver3",),
    "encoding": ("UTF-8",),  # outside the hash: one spelling only
    "email": 254,
    "BillToName": 255,
    "BillToCompany": 255,
    "tel": 32,
    "AutoRedirect": ("true", "false"),
    "sessionTimeout": _SESSION_TIMEOUT,
    # the result
    "ProcReturnCode": _DIGITS_2,
    "Response": ("Approved", "Declined", "Error"),
    "AuthCode": _AUTH_CODE,
    "TransId": _TRANS_ID,
    "HostRefNum": _HOST_REF,
    "ErrMsg": 255,
    "mdStatus": _MD_STATUS,
    "EXTRA.TRXDATE": _TRX_DATE,
    "MaskedPan": _MASKED_PAN,
    "HASH": _HASH,
}
# All of them but the two the form carries only when known: a field left out or renamed could keep
# the hash (it covers values in name order, and ``encoding`` not at all).
CALLBACK_OPTIONAL = ("BillToCompany", "tel")
CALLBACK_REQUIRED = tuple(name for name in CALLBACK_RULES if name not in CALLBACK_OPTIONAL)


@dataclass(frozen=True)
class CmiCallback:
    """A callback whose every field passed its rule; its HASH is checked next."""

    oid: str
    amount: Decimal
    approved: bool
    proc_return_code: str
    trans_id: str
    auth_code: str | None
    host_ref_num: str | None
    masked_pan: str | None
    err_msg: str | None
    transaction_date: str | None

    @property
    def amount_text(self) -> str:
        return f"{self.amount:.2f}"


def read_callback(fields: Mapping[str, str], client_id: str) -> CmiCallback:
    r = FieldReader(fields, allowed=CALLBACK_RULES, required=CALLBACK_REQUIRED)
    for name, rule in CALLBACK_RULES.items():
        if name not in fields:
            continue
        value = r.text(name, max_length=rule if isinstance(rule, int) else 512)
        if value != value.strip():
            raise MessageRejected(name, "leading or trailing space")
        if isinstance(rule, re.Pattern) and not rule.fullmatch(value):
            raise MessageRejected(name, "bad format")
        if isinstance(rule, tuple) and value not in rule:
            raise MessageRejected(name, "unknown value")
    r.equal("clientid", client_id)
    amount = r.amount("amount")

    def optional(name: str) -> str | None:
        return fields.get(name) or None

    return CmiCallback(
        oid=fields["oid"],
        amount=amount,
        approved=is_approved(fields),
        proc_return_code=fields["ProcReturnCode"],
        trans_id=fields["TransId"],
        auth_code=optional("AuthCode"),
        host_ref_num=optional("HostRefNum"),
        masked_pan=optional("MaskedPan"),
        err_msg=optional("ErrMsg"),
        transaction_date=optional("EXTRA.TRXDATE"),
    )
