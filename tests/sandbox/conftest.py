"""A fresh sandbox per test (its own app and its own store file), wired to an in-process receiver
that plays our platform.

The receiver stands in for the portal's CMI callback and emitter-ack endpoints, so the sandbox's
outbound calls never touch the network and each test can script the answers it gets. Tests reach
the sandbox through its HTTP API (``client``, paths relative to ``/sandbox/``) and, where they must
change how it behaves (retry schedules, clock, transport), through its own handle (``handle``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from bench._common import free_port
from portnet.settings import Settings
from sandbox.app import create_sandbox_app, running
from sandbox.context import Sandbox
from tests.support.sandbox import Receiver, sandbox_client


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        cmi_client_id="600000001",
        cmi_store_key="TestStoreKey|with\\odd chars",
        emitter_shared_key="TestEmitterKey",
        sandbox_emitter_ack_delay_seconds=0.01,
        sandbox_smtp_port=free_port(),
        sandbox_database_url=f"sqlite:///{tmp_path / 'sandbox.db'}",
    )


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def sandbox(settings: Settings, receiver: Receiver) -> AsyncIterator[FastAPI]:
    app = create_sandbox_app(settings, mail_sink=False)
    handle: Sandbox = app.state.sandbox
    handle.outbound.transport = httpx.ASGITransport(app=receiver.app())
    handle.tuning.cmi_callback_backoff_seconds = 0.01
    handle.tuning.emitter_ack_backoff_seconds = 0.01
    handle.tuning.amanpay_notify_backoff_seconds = 0.01
    async with running(handle, mail_sink=False):
        yield app


@pytest.fixture
def handle(sandbox: FastAPI) -> Sandbox:
    found: Sandbox = sandbox.state.sandbox
    return found


@pytest.fixture
async def client(sandbox: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with sandbox_client(sandbox) as http:
        yield http
