"""The payment channels' web parts, one module per channel (the same names as workflows/channels/
and activities/). Adding a channel: its module here (a ``WebChannel``, web/channels/base.py), its
templates under templates/channels/, and its line below.
"""

from __future__ import annotations

from fastapi import APIRouter

from portnet.statuses import Channel
from web.channels import amanpay, cheque_transfer, cmi_card, fatourati, paydirect
from web.channels.base import Choice, WebChannel

WEB_CHANNELS: tuple[WebChannel, ...] = (
    cmi_card.CHANNEL,
    fatourati.CHANNEL,
    amanpay.CHANNEL,
    paydirect.CHANNEL,
    cheque_transfer.CHANNEL,
)

BY_CHANNEL: dict[Channel, WebChannel] = {c: web for web in WEB_CHANNELS for c in web.channels}
CHOICES: tuple[Choice, ...] = tuple(
    sorted((c for w in WEB_CHANNELS for c in w.choices), key=lambda c: c.position)
)


# Choices that stand for a platform whose means are chosen on its own screen (``amanpay``).
BY_PLATFORM_VALUE: dict[str, WebChannel] = {
    c.value: web for web in WEB_CHANNELS for c in web.choices if c.value
}


def web_channel(channel: str | None) -> WebChannel | None:
    """The web part of a channel by its value (``cmi_card``, ``cheque``...); None for an unknown one."""
    try:
        return BY_CHANNEL.get(Channel(channel or ""))
    except ValueError:
        return None


def chosen_web_channel(value: str | None) -> WebChannel | None:
    """The web part of what the confirmation screen's form sent: a channel, or a platform (``amanpay``)."""
    return web_channel(value) or BY_PLATFORM_VALUE.get(value or "")


def api_routers() -> list[APIRouter]:
    return [web.api for web in WEB_CHANNELS if web.api is not None]


def page_routers() -> list[APIRouter]:
    return [web.pages for web in WEB_CHANNELS if web.pages is not None]
