"""One running sandbox, handed to every endpoint: its settings, memory, outgoing calls and clock.

Everything a partner remembers is in ``store``; what is here besides is how this process behaves
(retry schedules, the clock), which tests may change on the handle (``app.state.sandbox``) and a
restart sets back to the defaults.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from portnet.settings import Settings
from sandbox.deliveries import Outbox
from sandbox.runtime import Background, Outbound, make_templates
from sandbox.store import Store


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Tuning:
    """How often and how soon the partners call us again; the sandbox tests shorten them."""

    cmi_callback_max_tries: int = 3
    cmi_callback_backoff_seconds: float = 0.5
    fatourati_callback_tries: int = 3
    amanpay_notify_max_tries: int = 6
    amanpay_notify_backoff_seconds: float = 1.0
    emitter_ack_delay_seconds: float = 1.0
    emitter_ack_max_tries: int = 4
    emitter_ack_backoff_seconds: float = 0.5


@dataclass
class Sandbox:
    settings: Settings
    store: Store
    outbound: Outbound = field(default_factory=Outbound)
    background: Background = field(default_factory=Background)
    templates: Jinja2Templates = field(default_factory=make_templates)
    tuning: Tuning = field(default_factory=Tuning)
    # Aware UTC; the partners' business dates (expiry, transaction dates) follow it, the delivery
    # schedule does not (a test's frozen clock must not freeze the retries).
    clock: Callable[[], datetime] = utc_now
    # How an injected fault waits (slow answer, hang); tests record the wait instead of sleeping.
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep
    outbox: Outbox = field(init=False)

    def __post_init__(self) -> None:
        self.outbox = Outbox(self.store, self.outbound, self.background)
        self.tuning.emitter_ack_delay_seconds = self.settings.sandbox_emitter_ack_delay_seconds

    @classmethod
    def open(cls, settings: Settings) -> Sandbox:
        return cls(settings=settings, store=Store(settings.sandbox_database_url))

    def page(
        self, request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> HTMLResponse:
        response: HTMLResponse = self.templates.TemplateResponse(
            request, name, context, status_code=status_code
        )
        return response


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox
