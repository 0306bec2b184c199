"""An imitation of CMI's card gateway, reached by us over HTTP only.

It follows ../shared/partners.md to the letter so that pointing the platform at the real gateway
is a configuration change: same form fields, same HASH ver3 (``signature``, the bank's own code,
never ours), same server-to-server callback and retries (``orders``), same plain-text answers, same
XML status query (``status_api``). The hosted page and its scripted twin are in ``pages``; the
rules (test cards, 3-D Secure, form checks) in ``rules``.
"""

from __future__ import annotations

from fastapi import APIRouter

from sandbox.cmi_card import orders, pages, status_api
from sandbox.context import Sandbox

router = APIRouter(prefix="/cmi")
router.include_router(pages.router)
router.include_router(status_api.router)


def install(sandbox: Sandbox) -> None:
    """The callback is a delivery that outlives a restart."""
    sandbox.outbox.register(orders.CALLBACK, orders.CALLBACK_PURPOSE)
