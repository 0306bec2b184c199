"""What the issue-4 channels need from the payer, checked before a workflow starts.

Cheque: number and bank. Bank transfer: reference and date. The deadline of each channel comes
from settings: CMI card (foundation), Fatourati's reference life, finance's wait for the money.
"""

from __future__ import annotations

import re
from datetime import date

from portnet.settings import Settings
from portnet.statuses import Channel

CHEQUE_NUMBER = re.compile(r"^[0-9A-Za-z-]{4,20}$")
TRANSFER_REFERENCE = re.compile(r"^[0-9A-Za-z /._-]{4,40}$")


class DeclarationError(ValueError):
    pass


def deadline_seconds(channel: Channel, settings: Settings) -> int:
    if channel == Channel.CMI_FATOURATI:
        return settings.fatourati_expiry_seconds
    if channel in (Channel.CHEQUE, Channel.BANK_TRANSFER):
        return settings.offline_payment_deadline_seconds
    return settings.cmi_payment_deadline_seconds


def declaration_for(channel: Channel, given: dict[str, str] | None, today: date) -> dict[str, str] | None:
    """The cleaned declaration, or DeclarationError with a French sentence."""
    given = {k: (v or "").strip() for k, v in (given or {}).items() if isinstance(v, str)}
    if channel == Channel.CHEQUE:
        number, bank = given.get("cheque_number", ""), given.get("bank", "")[:80]
        if not CHEQUE_NUMBER.match(number):
            raise DeclarationError("Numéro de chèque invalide (4 à 20 caractères).")
        if len(bank) < 2:
            raise DeclarationError("Indiquez la banque du chèque.")
        return {"cheque_number": number, "bank": bank}
    if channel == Channel.BANK_TRANSFER:
        reference, when = given.get("transfer_reference", ""), given.get("transfer_date", "")
        if not TRANSFER_REFERENCE.match(reference):
            raise DeclarationError("Référence du virement invalide (4 à 40 caractères).")
        try:
            day = date.fromisoformat(when)
        except ValueError:
            raise DeclarationError("Date du virement invalide (AAAA-MM-JJ).") from None
        if day > today or (today - day).days > 365:
            raise DeclarationError("La date du virement doit être passée et de moins d'un an.")
        return {"transfer_reference": reference, "transfer_date": day.isoformat()}
    return None
