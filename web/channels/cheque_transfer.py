"""Cheque and bank transfer on the web side: what the payer declares, checked before the start, and
what the status page shows while finance checks that the money arrived.

Cheque: number and bank. Bank transfer: reference and date. The attempt waits for finance up to
``OFFLINE_PAYMENT_DEADLINE_SECONDS``; finance confirms or rejects it from its back-office.
"""

from __future__ import annotations

import json
import re
from datetime import date

from sqlmodel import Session
from starlette.datastructures import FormData

from portnet.models import Payment, PaymentChannelData
from portnet.settings import Settings
from portnet.statuses import Channel
from web.channels.base import ChannelRefused, Checkout, Choice, StatusPart, WebChannel
from workflows.types import PaymentView

CHEQUE_NUMBER = re.compile(r"^[0-9A-Za-z-]{4,20}$")
TRANSFER_REFERENCE = re.compile(r"^[0-9A-Za-z /._-]{4,40}$")
DECLARATION_LABELS = {
    "cheque_number": "Numéro du chèque",
    "bank": "Banque",
    "transfer_reference": "Référence du virement",
    "transfer_date": "Date du virement",
}


class DeclarationError(ValueError):
    pass


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


class ChequeTransferWeb(WebChannel):
    name = "cheque_transfer"
    choices = (
        Choice(Channel.CHEQUE, "Chèque", "Chèque", 3),
        Choice(Channel.BANK_TRANSFER, "Virement", "Virement", 7),
    )
    waits_for_finance = True
    checkout_template = "channels/cheque_transfer_checkout.html"

    def deadline_seconds(self, settings: Settings) -> int:
        return settings.offline_payment_deadline_seconds

    def checkout(
        self,
        channel: Channel,
        payer: dict[str, str],
        declaration: dict[str, str] | None,
        settings: Settings,
        today: date,
    ) -> Checkout:
        try:
            return Checkout(declaration=declaration_for(channel, declaration, today))
        except DeclarationError as bad:
            raise ChannelRefused(422, str(bad), "invalid_declaration") from None

    def form_declaration(self, form: FormData) -> dict[str, str]:
        """The cheque / transfer fields of the confirmation form (checked by ``declaration_for``)."""
        out: dict[str, str] = {}
        for name in DECLARATION_LABELS:
            value = form.get(name)
            if isinstance(value, str) and value.strip():
                out[name] = value.strip()[:80]
        return out

    def status_part(
        self, db: Session, settings: Settings, payment: Payment, view: PaymentView
    ) -> StatusPart | None:
        data = db.get(PaymentChannelData, payment.id)
        declared = json.loads(data.declaration) if data is not None and data.declaration else {}
        return StatusPart(
            "channels/cheque_transfer_status.html",
            {"declaration": [(DECLARATION_LABELS.get(k, k), v) for k, v in declared.items()]},
        )


CHANNEL = ChequeTransferWeb()
