"""The whole stack on real sockets: dev server, worker, the portal served by uvicorn, and the
partner sandboxes as their own server on their own port (``sandbox_server``).

The CMI sandbox calls our callback over HTTP and the emitter sandbox calls our ack endpoint, exactly
as the partners would, so these tests exercise the signatures and the answers end to end. Tests
reach the sandboxes over HTTP (``sandbox_url``), never through their objects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
import uvicorn
from temporalio.testing import WorkflowEnvironment

from portnet.settings import get_settings
from tests.support.api import Stack, login
from tests.support.workers import running_worker
from web.app import create_app


@pytest_asyncio.fixture(scope="session")
async def stack(
    dev_env: WorkflowEnvironment, database_url: str, web_port: int, sandbox_server: str
) -> AsyncIterator[Stack]:
    async with running_worker(dev_env.client) as queue:
        settings = get_settings().model_copy(update={"temporal_task_queue": queue})
        app = create_app(settings, temporal_client=dev_env.client)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=web_port, log_level="warning", lifespan="on")
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
            if task.done():
                task.result()
        try:
            yield Stack(dev_env, app, f"http://127.0.0.1:{web_port}", queue, sandbox_server)
        finally:
            server.should_exit = True
            await task


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
    client = httpx.AsyncClient(base_url=stack.base_url, timeout=30)
    yield client
    await client.aclose()
