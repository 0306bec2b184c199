"""What every channel's web part offers, so that starting and showing an attempt needs no branch on it.

A channel's web part (one module in web/channels/, listed in web/channels/__init__.py) says:

- ``choices``: how it is offered on the confirmation screen ("Plateformes de paiement" in the guide),
  and ``screen_channels``: the channels chosen on its own screen instead (Amanpay's means);
- ``checkout``: its own payer fields, checked before any workflow starts (a French refusal otherwise),
  and ``deadline_seconds``, the attempt's deadline from settings; ``checkout_template``, its fields
  on the confirmation screen;
- ``form_payer`` / ``form_declaration`` / ``order_id`` / ``screen`` / ``shows_screen``: what the
  portal's form gives it, and its own screen before the start (Amanpay's, in the guide), if any;
- ``status_part``: the part of the status page it adds (a template and that template's values), and
  ``waits_for_finance`` (a declared payment: cancellable while finance checks, no self-reloading);
- ``api`` and ``pages``: its routes (partner callbacks, browser returns, the payer's own actions).

The defaults below are those of a channel that needs none of it (the card: CMI's hosted page asks
for the card; its callback and browser returns are its routes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Response
from sqlmodel import Session
from starlette.datastructures import FormData

from portnet.models import Payment
from portnet.settings import Settings
from portnet.statuses import Channel
from workflows.types import AmanpayPayer, AmanpaySettings, PaymentView


@dataclass(frozen=True)
class Choice:
    """One radio button of the confirmation screen, in the guide's order (``position``) and group.

    ``value`` is what the form sends when it is not the channel's value: a platform whose means are
    chosen on its own screen (Amanpay) is one button, and ``channel`` then stands for its method.
    ``name`` ends "Payer avec …" (the channel's label by default).
    """

    channel: Channel
    label: str
    platform: str
    position: int
    value: str = ""
    name: str = ""

    @property
    def form_value(self) -> str:
        return self.value or self.channel.value

    @property
    def button_name(self) -> str:
        return self.name or self.channel.label


@dataclass
class ChannelRefused(Exception):
    """A channel refuses the payer's input or action: HTTP status, French sentence, stable code."""

    status_code: int
    message: str
    code: str
    attempts_left: int | None = None
    retry_after: int | None = None


@dataclass(frozen=True)
class Checkout:
    """A channel's payer fields, checked: what goes into ``PaymentInput`` besides the common fields.

    ``payer_name`` / ``payer_phone`` replace the payer's name and phone when the channel has its own
    (the Amanpay screen asks them again).
    """

    declaration: dict[str, str] | None = None
    amanpay: AmanpayPayer | None = None
    amanpay_settings: AmanpaySettings | None = None
    payer_name: str | None = None
    payer_phone: str | None = None


@dataclass(frozen=True)
class StatusPart:
    """The status page's part for a channel: a template included in payments/status.html, its values."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)


# The channel's own screen before the start: (request, settings, rows, ids, channel, payer, error,
# status code) -> the page. ``rows`` are the selected (invoice, emitter, company) rows.
Screen = Callable[..., Response]


class WebChannel:
    """A channel's web part; a module in web/channels/ subclasses it and overrides what it needs."""

    name: str  # the channel's file name in every layer (workflows/channels/, activities/, web/channels/)
    choices: tuple[Choice, ...] = ()
    api: APIRouter | None = None  # its JSON routes (partner callbacks, the payer's actions)
    pages: APIRouter | None = None  # its portal routes
    # A declared payment waits days for finance: cancellable while it waits, no self-reloading page.
    waits_for_finance: bool = False
    # The template of its fields on the confirmation screen, if it has any there.
    checkout_template: str | None = None
    # Its own screen between the confirmation screen and the start (Amanpay's), if it has one.
    screen: Screen | None = None
    # The channels chosen on that screen rather than on the confirmation screen.
    screen_channels: tuple[Channel, ...] = ()

    @property
    def channels(self) -> tuple[Channel, ...]:
        offered = tuple(choice.channel for choice in self.choices if not choice.value)
        return offered + self.screen_channels

    def deadline_seconds(self, settings: Settings) -> int:
        return settings.cmi_payment_deadline_seconds

    def checkout(
        self,
        channel: Channel,
        payer: dict[str, str],
        declaration: dict[str, str] | None,
        settings: Settings,
        today: date,
    ) -> Checkout:
        """The channel's fields, checked; raises ``ChannelRefused`` with a French sentence."""
        return Checkout()

    def shows_screen(self, form: FormData) -> bool:
        """Whether this form comes from the confirmation screen and must go to ``screen`` first."""
        return False

    def form_payer(self, form: FormData, payer: dict[str, str]) -> dict[str, str]:
        """The payer fields from the portal's form (the confirmation screen's, by default)."""
        return payer

    def form_declaration(self, form: FormData) -> dict[str, str]:
        return {}

    def order_id(self, form: FormData) -> str | None:
        """The order number the channel's own screen already showed the payer, if any."""
        return None

    def status_part(
        self, db: Session, settings: Settings, payment: Payment, view: PaymentView
    ) -> StatusPart | None:
        return None


def sandbox_pages(settings: Settings) -> str:
    """Where a developer pays at the partner's sandbox (``SANDBOX_BASE_URL``), when SANDBOX_ENABLED
    lets the portal link to them; empty otherwise (production never links to them)."""
    if not settings.sandbox_enabled or settings.is_production:
        return ""
    return settings.sandbox_base_url.rstrip("/") + "/sandbox"


def remaining_text(expires_at: str | None, now: datetime | None = None) -> str:
    """A deadline as the no-JavaScript page shows it: ``2 h 59 min 58 s``."""
    if not expires_at:
        return ""
    deadline = datetime.fromisoformat(expires_at)
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)
    left = int((deadline - (now or datetime.now(UTC))).total_seconds())
    if left <= 0:
        return "délai écoulé"
    return f"{left // 3600} h {left % 3600 // 60:02d} min {left % 60:02d} s"
