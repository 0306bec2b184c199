"""Amanpay (cash code and Amanty) on the web side: Amanpay's own screen, the payer's fields, the
status page's cash code, and Amanpay's signed notifications.

Amanpay's screen (the guide's: order number, amount, three choices, each with its own fields) comes
between the confirmation screen and the start, for PayDirect too (web/channels/paydirect.py).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from sqlmodel import Session
from starlette.datastructures import FormData

from portnet.models import Payment
from portnet.money import total
from portnet.settings import Settings
from portnet.statuses import Channel
from web.attempts import new_payment_id
from web.channels.base import ChannelRefused, Checkout, Choice, StatusPart, WebChannel
from web.pages.guards import form_str
from web.pages.rendering import render
from workflows.types import AmanpayPayer, AmanpaySettings, PaymentView

NAME = re.compile(r"^[^\d<>\"]{1,80}$")
# Amanpay's screen, as the guide shows it.
SCREEN_CHOICES = (
    (Channel.AMANPAY_AMANTY, "Carte Amanty"),
    (Channel.AMANPAY_PAYDIRECT, "PayDirect"),
    (Channel.AMANPAY_CODE, "Code de paiement"),
)
SCREEN_FIELDS = ("last_name", "first_name", "contract_number", "cin", "mandataire", "phone", "email")


def amanpay_settings(settings: Settings) -> AmanpaySettings:
    return AmanpaySettings(
        code_ttl_seconds=settings.amanpay_code_ttl_seconds,
        redirect_deadline_seconds=settings.amanpay_redirect_deadline_seconds,
        otp_ttl_seconds=settings.paydirect_otp_ttl_seconds,
        step_timeout_seconds=settings.paydirect_step_timeout_seconds,
    )


def screen_page(
    request: Request,
    settings: Settings,
    rows: list[Any],
    ids: list[int],
    channel: str,
    payer: dict[str, str],
    error: str | None = None,
    status_code: int = 200,
    order_id: str | None = None,
) -> Response:
    """Amanpay's screen: the order number (our payment id, kept for the start), amount, choices."""
    amount: Decimal = total(inv.amount_ttc for inv, _, _ in rows)
    return render(
        request,
        "channels/amanpay_screen.html",
        {
            "order_id": order_id or new_payment_id(),
            "amount": amount,
            "numbers": [inv.number for inv, _, _ in rows],
            "ids": ids,
            "choices": SCREEN_CHOICES,
            "chosen": channel,
            "payer": {name: "" for name in (*SCREEN_FIELDS, "name")} | {k: v for k, v in payer.items() if v},
            "error": error,
        },
        settings=settings,
        status_code=status_code,
    )


class AmanpayScreenChannel(WebChannel):
    """A channel chosen on Amanpay's screen: its fields come from there, with the order number."""

    screen = staticmethod(screen_page)

    def shows_screen(self, form: FormData) -> bool:
        """Coming from the confirmation screen: show Amanpay's own screen before anything starts."""
        return not form_str(form, "amanpay_step", 5)

    def form_payer(self, form: FormData, payer: dict[str, str]) -> dict[str, str]:
        fields = {name: form_str(form, f"ap_{name}", 120) for name in SCREEN_FIELDS}
        return {k: v for k, v in fields.items() if v}

    def order_id(self, form: FormData) -> str | None:
        return form_str(form, "order_id", 20) or None


class AmanpayWeb(AmanpayScreenChannel):
    name = "amanpay"
    choices = (
        Choice(Channel.AMANPAY_AMANTY, "Amanty", "Amanpay", 3),
        Choice(Channel.AMANPAY_CODE, "Code de paiement", "Amanpay", 5),
    )

    def checkout(
        self,
        channel: Channel,
        payer: dict[str, str],
        declaration: dict[str, str] | None,
        settings: Settings,
        today: date,
    ) -> Checkout:
        """The cash code needs the payer's names (on the code and its e-mail); Amanty asks on its page."""
        if channel != Channel.AMANPAY_CODE:
            return Checkout(amanpay=AmanpayPayer(), amanpay_settings=amanpay_settings(settings))
        last = str(payer.get("last_name") or "").strip()[:80]
        first = str(payer.get("first_name") or "").strip()[:80]
        if not NAME.match(last) or not NAME.match(first):
            raise ChannelRefused(
                422, "Nom et prénom sont requis pour recevoir le code de paiement.", "invalid_payer"
            )
        return Checkout(
            amanpay=AmanpayPayer(last_name=last, first_name=first),
            amanpay_settings=amanpay_settings(settings),
            payer_name=f"{first} {last}",
        )

    def status_part(
        self, db: Session, settings: Settings, payment: Payment, view: PaymentView
    ) -> StatusPart | None:
        return StatusPart("channels/amanpay_status.html")


CHANNEL = AmanpayWeb()
