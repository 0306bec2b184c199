"""The worker's partner HTTP clients are shared per partner and loop, and closed at shutdown."""

from __future__ import annotations

import asyncio

import httpx

from activities.http import close_partner_clients, partner_client


async def test_one_client_per_partner_and_timeout_reused_then_closed() -> None:
    first = partner_client("fatourati", 20)
    assert partner_client("fatourati", 20) is first
    assert partner_client("amanpay", 20) is not first
    assert partner_client("fatourati", httpx.Timeout(5.0)) is not first
    await close_partner_clients()
    assert first.is_closed
    assert partner_client("fatourati", 20) is not first  # a new one after shutdown
    await close_partner_clients()


def test_a_loop_never_gets_another_loops_client() -> None:
    async def take() -> httpx.AsyncClient:
        client = partner_client("emitters", 20)
        await close_partner_clients()
        return client

    assert asyncio.run(take()) is not asyncio.run(take())
