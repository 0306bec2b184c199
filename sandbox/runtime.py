"""What every sandbox shares: templates, the outbound HTTP client, background work.

Sandboxes call us back over HTTP like the real partners. The sandbox tests replace the network
with an in-process transport (``Sandbox.outbound.transport``) so callbacks stay fast and hermetic,
and they wait for retries with ``Sandbox.background.wait_idle()`` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx
from fastapi.templating import Jinja2Templates

log = logging.getLogger("sandbox")

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# Babel's fr_MA groups thousands with a narrow no-break space; the portal shows amounts that way.
_THOUSANDS = "\u202f"


def format_mad(amount: str | Decimal) -> str:
    """``3600.00`` -> ``3 600,00 MAD``, as a French-speaking payer expects to read it."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return f"{amount} MAD"
    sign = "-" if value < 0 else ""
    units, _, cents = f"{abs(value):.2f}".partition(".")
    groups: list[str] = []
    while units:
        groups.insert(0, units[-3:])
        units = units[:-3]
    return f"{sign}{_THOUSANDS.join(groups)},{cents} MAD"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.filters["mad"] = format_mad
    return templates


@dataclass
class Outbound:
    """How the sandboxes reach our platform; ``transport=None`` means the real network.

    One client, kept alive between calls (a client per call would build a TLS context each time);
    a new one when a test swaps the transport.
    """

    transport: httpx.AsyncBaseTransport | None = None
    timeout_seconds: float = 10.0
    _clients: list[tuple[httpx.AsyncBaseTransport | None, httpx.AsyncClient]] = field(
        default_factory=list, init=False, repr=False
    )

    def _client(self) -> httpx.AsyncClient:
        if not self._clients or self._clients[-1][0] is not self.transport:
            client = httpx.AsyncClient(transport=self.transport, timeout=self.timeout_seconds)
            self._clients.append((self.transport, client))
        return self._clients[-1][1]

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self._client().post(url, **kwargs)

    async def aclose(self) -> None:
        clients, self._clients = self._clients, []
        for _, client in clients:
            await client.aclose()


@dataclass
class Background:
    """Keeps references to fire-and-forget tasks (asyncio only keeps weak ones) and lets tests wait."""

    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sandbox background task %s failed", task.get_name(), exc_info=task.exception())

    async def wait_idle(self, deadline_seconds: float = 30.0) -> None:
        """Wait until no task is left, including tasks that the running ones spawn."""
        async with asyncio.timeout(deadline_seconds):
            while self.tasks:
                await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def cancel_all(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
