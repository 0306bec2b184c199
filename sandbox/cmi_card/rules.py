"""CMI's rules as pure functions: what a payment form must hold, which test card gets which answer.

Kept apart from the pages and the memory so that each rule reads (and is tested) on its own, from
../shared/partners.md: the form fields and their checks, the test cards, 3-D Secure, the expiry.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from portnet.settings import Settings
from sandbox.cmi_card import signature

CURRENCY_MAD = "504"
STORE_TYPE = "3D_PAY_HOSTING"
TRAN_TYPES = frozenset({"PreAuth", "Auth"})
REQUIRED_FIELDS = (
    "clientid",
    "oid",
    "amount",
    "currency",
    "okUrl",
    "failUrl",
    "CallbackURL",
    "storetype",
    "TranType",
    "rnd",
    "hashAlgorithm",
    "HASH",
)
SESSION_TIMEOUT_RANGE = (30, 2700)
_AMOUNT = re.compile(r"^\d{1,13}\.\d{2}$")

ANSWER_CAPTURE = "ACTION=POSTAUTH"
ANSWER_ACK = "APPROVED"


def _morocco() -> tzinfo:
    try:
        return ZoneInfo("Africa/Casablanca")
    except ZoneInfoNotFoundError:  # a slim container without tzdata: the dates stay plausible
        return UTC


MOROCCO = _morocco()


@dataclass(frozen=True)
class SandboxCard:
    brand: str
    cvc: str
    three_d_secure: bool


TEST_CARDS: dict[str, SandboxCard] = {
    "4000000000000010": SandboxCard("Visa", "000", False),
    "5453010000066100": SandboxCard("MasterCard", "000", False),
    "5191630100004896": SandboxCard("MasterCard", "000", True),
}
THREE_DS_CODE = "123"


class Decision(BaseModel):
    proc_return_code: str
    response: str
    err_msg: str
    md_status: str

    @property
    def approved(self) -> bool:
        return self.proc_return_code == "00"


APPROVED = Decision(proc_return_code="00", response="Approved", err_msg="", md_status="1")
DECLINED = Decision(proc_return_code="05", response="Declined", err_msg="Transaction refusée", md_status="1")
EXPIRED_CARD = Decision(proc_return_code="54", response="Declined", err_msg="Carte expirée", md_status="1")
WRONG_CVC = Decision(proc_return_code="82", response="Declined", err_msg="CVC incorrect", md_status="1")
THREE_DS_FAILED = Decision(
    proc_return_code="05", response="Declined", err_msg="Authentification 3-D Secure échouée", md_status="0"
)


def get_field(fields: Mapping[str, str], name: str) -> str | None:
    """CMI treats field names case-insensitively."""
    lowered = name.lower()
    return next((v for k, v in fields.items() if k.lower() == lowered), None)


def validate_request(fields: Mapping[str, str], settings: Settings) -> list[str]:
    """Every reason to refuse the form, in French, so a developer sees all mistakes at once."""
    errors: list[str] = []
    hash_value = get_field(fields, "HASH")
    if not hash_value:
        errors.append("Le champ HASH est manquant.")
    elif not signature.check(fields, settings.cmi_store_key):
        errors.append("Le HASH est invalide (signature ver3 non conforme).")
    for name in REQUIRED_FIELDS:
        if name != "HASH" and not (get_field(fields, name) or "").strip():
            errors.append(f"Le champ obligatoire « {name} » est manquant.")

    def value(name: str) -> str:
        return (get_field(fields, name) or "").strip()

    if value("clientid") and value("clientid") != settings.cmi_client_id:
        errors.append("Identifiant marchand (clientid) inconnu.")
    amount = value("amount")
    if amount and (not _AMOUNT.match(amount) or Decimal(amount) <= 0):
        errors.append("Montant invalide : attendu un nombre positif avec deux décimales (ex. 123.45).")
    if value("currency") and value("currency") != CURRENCY_MAD:
        errors.append("Devise non acceptée : seul le dirham (504) est accepté.")
    if value("storetype") and value("storetype") != STORE_TYPE:
        errors.append(f"Type de boutique (storetype) non supporté : attendu {STORE_TYPE}.")
    if value("TranType") and value("TranType") not in TRAN_TYPES:
        errors.append("Type de transaction (TranType) non supporté.")
    if value("hashAlgorithm") and value("hashAlgorithm") != "ver3":
        errors.append("Algorithme de hachage non supporté : attendu ver3.")
    for name in ("okUrl", "failUrl", "CallbackURL", "shopurl"):
        url = value(name)
        if url and not url.lower().startswith(("http://", "https://")):
            errors.append(f"L'adresse « {name} » doit commencer par http:// ou https://.")
    timeout = value("sessionTimeout")
    if timeout:
        low, high = SESSION_TIMEOUT_RANGE
        if not timeout.isdigit() or not low <= int(timeout) <= high:
            errors.append(f"sessionTimeout doit être un nombre de secondes entre {low} et {high}.")
    return errors


def normalize_pan(pan: str) -> str:
    return re.sub(r"[\s-]", "", pan)


def parse_expiry(text: str) -> tuple[int, int] | None:
    """(year, month) from ``MM/YY``, ``MM/YYYY`` or ``MMYY``; None if unreadable."""
    match = re.fullmatch(r"\s*(\d{1,2})\s*[/-]?\s*(\d{2}|\d{4})\s*", text)
    if not match:
        return None
    month, year = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        return None
    return (2000 + year if year < 100 else year, month)


def card_input_errors(pan: str, expiry: str, cvv: str) -> list[str]:
    """What the page refuses before anything reaches the bank (no attempt, no callback)."""
    errors = []
    if not re.fullmatch(r"\d{12,19}", normalize_pan(pan)):
        errors.append("Numéro de carte invalide (12 à 19 chiffres).")
    if parse_expiry(expiry) is None:
        errors.append("Date d'expiration invalide (format MM/AA).")
    if not re.fullmatch(r"\d{3,4}", cvv.strip()):
        errors.append("Cryptogramme (CVV) invalide (3 ou 4 chiffres).")
    return errors


def needs_three_d_secure(pan: str) -> bool:
    card = TEST_CARDS.get(normalize_pan(pan))
    return card is not None and card.three_d_secure


def authorize(pan: str, expiry: str, cvv: str, today: datetime) -> Decision:
    """The issuer's answer once 3-D Secure, if any, has passed."""
    card = TEST_CARDS.get(normalize_pan(pan))
    if card is None:
        return DECLINED
    parsed = parse_expiry(expiry)
    if parsed is None or parsed < (today.year, today.month):
        return EXPIRED_CARD
    if not hmac.compare_digest(cvv.strip().encode(), card.cvc.encode()):
        return WRONG_CVC
    return APPROVED


def three_d_secure_decision(code: str | None, issuer_answer: Decision) -> Decision:
    """The authentication first: a wrong code declines whatever the issuer would have said."""
    if not hmac.compare_digest((code or "").strip().encode(), THREE_DS_CODE.encode()):
        return THREE_DS_FAILED
    return issuer_answer


def mask_pan(pan: str) -> str:
    digits = normalize_pan(pan)
    return f"{digits[:6]}***{digits[-4:]}"
