"""A fresh sandbox per test, wired to an in-process receiver that plays our platform.

The receiver stands in for the portal's CMI callback and emitter-ack endpoints, so the sandbox's
outbound calls never touch the network and each test can script the answers it gets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from portnet.settings import Settings
from sandbox.app import create_sandbox_app
from tests.sandbox.helpers import Receiver, free_port


@pytest.fixture
def settings() -> Settings:
    return Settings(
        cmi_client_id="600000001",
        cmi_store_key="TestStoreKey|with\\odd chars",
        emitter_shared_key="TestEmitterKey",
        sandbox_emitter_ack_delay_seconds=0.01,
        sandbox_smtp_port=free_port(),
    )


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def sandbox(settings: Settings, receiver: Receiver) -> AsyncIterator[FastAPI]:
    app = create_sandbox_app(settings)
    app.state.outbound.transport = httpx.ASGITransport(app=receiver.app())
    app.state.cmi.callback_backoff_seconds = 0.01
    app.state.emitters.ack_backoff_seconds = 0.01
    yield app
    await app.state.background.cancel_all()


@pytest.fixture
async def client(sandbox: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sandbox)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as http:
        yield http
