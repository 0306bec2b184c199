"""One trace follows a payment: the API call that starts it, its workflow, its activities, and the
settlement after finance confirms the transfer (portnet/telemetry.py, with an in-memory exporter)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from portnet import telemetry
from portnet.models import Invoice
from portnet.settings import get_settings
from tests.support.api import declare_transfer
from tests.support.workers import eventually, running_worker
from web.app import create_app


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.instrument_libraries(provider)
    try:
        yield provider, exporter
    finally:
        telemetry.uninstrument_libraries()
        provider.shutdown()


@pytest_asyncio.fixture
async def traced_portal(
    dev_env: WorkflowEnvironment, sandbox_server: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> AsyncIterator[Callable[[], httpx.AsyncClient]]:
    """The portal and a worker on one traced client, as the two processes are when tracing is on."""
    provider, _ = spans
    config = dev_env.client.config()
    config["interceptors"] = telemetry.temporal_interceptors(provider)
    client = Client(**config)
    async with running_worker(client) as queue:
        settings = get_settings().model_copy(update={"temporal_task_queue": queue})
        app = create_app(settings, temporal_client=client)
        telemetry.instrument_app(app, provider)
        opened: list[httpx.AsyncClient] = []

        def open_client() -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app)
            http = httpx.AsyncClient(transport=transport, base_url=settings.public_base_url)
            opened.append(http)
            return http

        yield open_client
        for http in opened:
            await http.aclose()


async def _login(http: httpx.AsyncClient, username: str) -> None:
    response = await http.post("/api/v1/session", json={"username": username, "password": "Portnet2026!"})
    assert response.status_code == 200, response.text


def _server_span(finished: list[ReadableSpan], route: str) -> ReadableSpan:
    found = [
        s for s in finished if s.attributes and s.attributes.get("http.route") == route and s.parent is None
    ]
    assert found, sorted({s.name for s in finished})
    return found[0]


async def test_one_trace_from_the_api_call_to_the_settlement(
    traced_portal: Callable[[], httpx.AsyncClient],
    spans: tuple[TracerProvider, InMemorySpanExporter],
    make_invoice: Callable[..., Invoice],
) -> None:
    _, exporter = spans
    payer, finance = traced_portal(), traced_portal()
    await _login(payer, "sataa")
    await _login(finance, "finance")
    invoice = make_invoice()
    payment = await declare_transfer(payer, [invoice.id or 0])
    confirm = f"/api/v1/finance/payments/{payment['id']}/confirm"
    confirmed = await finance.post(confirm, json={"reason": "virement reçu"})
    assert confirmed.status_code == 202, confirmed.text

    def settled() -> list[ReadableSpan]:
        return [s for s in exporter.get_finished_spans() if s.name == "RunActivity:settle_payment"]

    async def probe() -> list[ReadableSpan] | None:
        return settled() or None

    await eventually(probe, timeout=30)
    finished = list(exporter.get_finished_spans())
    start = _server_span(finished, "/api/v1/payments")
    trace_id = start.context.trace_id
    in_trace = {s.name for s in finished if s.context.trace_id == trace_id}
    # The API call, its workflow, the hold, finance's decision and the settlement: one trace.
    workflow = {"StartUpdateWithStartWorkflow:PaymentWorkflow", "RunWorkflow:PaymentWorkflow"}
    assert workflow <= in_trace, in_trace
    assert {"RunActivity:reserve_invoices", "RunActivity:settle_payment"} <= in_trace, in_trace
    settle = settled()[0]
    assert settle.context.trace_id == trace_id
    # The ledger's SQL statements run inside the settlement's span.
    sql = [s for s in finished if s.parent is not None and s.parent.span_id == settle.context.span_id]
    assert any(s.attributes and s.attributes.get("db.system") for s in sql), [s.name for s in sql]
