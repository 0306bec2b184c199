"""The worker's Prometheus endpoint (WORKER_METRICS_ADDRESS): the Temporal SDK's metrics, and the
attempts the ledger activities count through the SDK meter; partner calls timed by their transport."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench._common import free_port
from portnet import attempt_counts
from portnet.metrics import TEMPORAL_SDK_SERIES
from portnet.models import Invoice
from portnet.partner_http import MeasuredTransport
from portnet.settings import get_settings
from tests.support.metrics import value
from tests.support.workers import eventually, payment_input, running_worker, start, wait_status
from worker import runtime


async def test_worker_exports_sdk_metrics_and_attempts(
    dev_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice]
) -> None:
    attempt_counts.install()  # as worker.py's main does
    address = f"127.0.0.1:{free_port()}"
    settings = get_settings().model_copy(update={"worker_metrics_address": address})
    config = dev_env.client.config()
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=config["data_converter"],
        runtime=runtime(settings),
    )
    invoice = make_invoice()
    async with running_worker(client) as queue:
        handle = await start(client, payment_input(invoice.company_id, [invoice.id or 0], deadline=1), queue)
        await wait_status(handle, "expired", timeout=30)

        async def scraped() -> str | None:
            async with httpx.AsyncClient(timeout=5) as http:
                text = (await http.get(f"http://{address}/metrics")).text
            ended = value(text, "portnet_attempts_ended_total", channel="cmi_card", status="expired")
            return text if ended >= 1 else None

        text = await eventually(scraped, timeout=10)
    assert value(text, "portnet_attempts_started_total", channel="cmi_card") >= 1
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")}
    assert TEMPORAL_SDK_SERIES <= names, sorted(TEMPORAL_SDK_SERIES - names)
    assert value(text, "temporal_num_pollers") > 0


async def test_partner_calls_are_timed_and_failures_counted() -> None:
    import prometheus_client

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/down":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(503 if request.url.path == "/busy" else 200)

    def sample(name: str, **labels: str) -> float:
        return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0

    before_ok = sample("portnet_partner_call_seconds_count", partner="testpartner", outcome="2xx")
    before_5xx = sample("portnet_partner_call_errors_total", partner="testpartner", kind="http_5xx")
    before_down = sample("portnet_partner_call_errors_total", partner="testpartner", kind="connection")
    transport = MeasuredTransport("testpartner", httpx.MockTransport(answer))
    async with httpx.AsyncClient(transport=transport, base_url="http://partner.test") as http:
        assert (await http.get("/ok")).status_code == 200
        assert (await http.get("/busy")).status_code == 503
        with pytest.raises(httpx.ConnectError):
            await http.get("/down")
    errors = "portnet_partner_call_errors_total"
    assert sample("portnet_partner_call_seconds_count", partner="testpartner", outcome="2xx") == before_ok + 1
    assert sample(errors, partner="testpartner", kind="http_5xx") == before_5xx + 1
    assert sample(errors, partner="testpartner", kind="connection") == before_down + 1




def test_worker_probe_reads_the_pollers() -> None:
    from portnet.worker_probe import pollers

    text = (
        "# HELP temporal_num_pollers x\n"
        'temporal_num_pollers{poller_type="workflow_task"} 2\n'
        'temporal_num_pollers{poller_type="activity_task"} 3\n'
        "temporal_request 7\n"
    )
    assert pollers(text) == 5
    assert pollers("temporal_request 7\n") == 0


def test_a_taken_metrics_port_stops_production_but_not_development() -> None:
    import socket

    from portnet.settings import Settings

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        development = Settings(portnet_env="development", worker_metrics_address=address)
        assert runtime(development) is not None
        with pytest.raises(Exception):  # noqa: B017 - the SDK's bind error, whatever its class
            runtime(Settings(portnet_env="production", worker_metrics_address=address))
