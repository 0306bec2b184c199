"""One long-lived HTTP client per partner for the worker's activities.

A new ``httpx.AsyncClient`` per call builds a TLS context and a connection pool each time: most of
the CPU of a partner call, and no connection reuse (a profile of the card benchmark found a third of
a process's time there). Clients are kept per event loop (tests run several loops in one process; a
client cannot outlive its loop) and closed when the worker stops.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

from portnet.partner_http import MeasuredTransport

_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)
LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=32, keepalive_expiry=30)


def partner_client(partner: str, timeout: float | httpx.Timeout) -> httpx.AsyncClient:
    """The running loop's client for ``partner`` and ``timeout`` (created on first use)."""
    clients = _CLIENTS.setdefault(asyncio.get_running_loop(), {})
    key = f"{partner} {timeout!r}"
    client = clients.get(key)
    if client is None or client.is_closed:
        # Each call timed and its failures counted under the partner's name (portnet/partner_http.py).
        transport = MeasuredTransport(partner, httpx.AsyncHTTPTransport(limits=LIMITS))
        client = clients[key] = httpx.AsyncClient(timeout=timeout, transport=transport)
    return client


async def close_partner_clients() -> None:
    """Closes the running loop's clients (the worker's shutdown)."""
    clients = _CLIENTS.pop(asyncio.get_running_loop(), {})
    await asyncio.gather(*(client.aclose() for client in clients.values()))
