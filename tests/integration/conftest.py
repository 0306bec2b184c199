"""Clients of the whole stack (``stack`` in tests/conftest.py: dev server, worker, the portal
served by uvicorn, and the partner sandboxes as their own server on their own port).

The CMI sandbox calls our callback over HTTP and the emitter sandbox calls our ack endpoint, exactly
as the partners would, so these tests exercise the signatures and the answers end to end. Tests
reach the sandboxes over HTTP (``sandbox_url``), never through their objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from tests.support.api import TLS, Stack, login


@pytest_asyncio.fixture
async def sataa(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    client = await login(stack.base_url, "sataa")
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def aska(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    client = await login(stack.base_url, "aska")
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def anonymous(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    client = httpx.AsyncClient(base_url=stack.base_url, timeout=30, verify=TLS)
    yield client
    await client.aclose()
