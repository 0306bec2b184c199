"""Log lines: one JSON object per line in production, with the payment id, the workflow id and the
trace id wherever they are known (portnet/logs.py)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from portnet.logs import bind_payment, configure_logging
from portnet.settings import Settings, get_settings
from tests.support.partners import RecordingTemporal
from web.app import create_app


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging(Settings(portnet_env="production"), "portnet-test", stream)
    try:
        yield stream
    finally:
        logging.getLogger().removeHandler(handler)
        configure_logging(get_settings(), "portnet-web")  # the tests' own format again


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_production_defaults_to_json_and_development_to_text() -> None:
    assert Settings(portnet_env="production").log_format == "json"
    assert Settings(portnet_env="development").log_format == "text"
    assert Settings(portnet_env="production", log_format="text").log_format == "text"


def test_one_json_object_per_line_with_the_payment_and_the_trace(lines: io.StringIO) -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span, bind_payment("PN0123456789AB"):
        try:
            raise ValueError("deux\nlignes")
        except ValueError:
            logging.getLogger("portnet.test").exception("échec de l'appel")
    [line] = records(lines)
    assert line["level"] == "ERROR" and line["logger"] == "portnet.test" and line["service"] == "portnet-test"
    assert line["message"] == "échec de l'appel"
    assert line["payment_id"] == "PN0123456789AB"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert "ValueError" in str(line["exception"])
    assert len(lines.getvalue().splitlines()) == 1  # the traceback stays inside the one line


def test_activity_lines_carry_the_workflow_and_payment_ids(lines: io.StringIO) -> None:
    @activity.defn
    def settle() -> None:
        logging.getLogger("activities.test").info("règlement")

    env = ActivityEnvironment()
    env.info = env.info.__class__(**{**env.info.__dict__, "workflow_id": "payment-PN00000000CAFE"})
    env.run(settle)
    [line] = records(lines)
    assert line["workflow_id"] == "payment-PN00000000CAFE"
    assert line["payment_id"] == "PN00000000CAFE"


async def test_request_lines_carry_the_payment_id_of_the_route(lines: io.StringIO) -> None:
    app = create_app(get_settings())
    app.state.temporal = RecordingTemporal()

    @app.get("/test-log/payments/{payment_id}")
    async def logs_something(payment_id: str) -> dict[str, str]:
        logging.getLogger("portnet.test").warning("lecture")
        return {}

    # create_app configured logging for the test app's settings: capture in JSON again.
    configure_logging(Settings(portnet_env="production"), "portnet-test", lines)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as http:
        await http.get("/test-log/payments/PN00000000BEEF")
    mine = [line for line in records(lines) if line["logger"] == "portnet.test"]
    assert mine and mine[0]["payment_id"] == "PN00000000BEEF"


def test_workflow_logger_extra_gives_the_workflow_id(lines: io.StringIO) -> None:
    logging.getLogger("temporalio.workflow").info(
        "attente", extra={"temporal_workflow": {"workflow_id": "payment-PN0000000000AA"}}
    )
    [line] = records(lines)
    assert line["workflow_id"] == "payment-PN0000000000AA" and line["payment_id"] == "PN0000000000AA"


def test_development_text_lines_name_the_known_ids_only() -> None:
    stream = io.StringIO()
    handler = configure_logging(Settings(portnet_env="development"), "portnet-test", stream)
    try:
        with bind_payment("PN00000000F00D"):
            logging.getLogger("portnet.test").info("bonjour")
        logging.getLogger("portnet.test").info("sans paiement")
    finally:
        logging.getLogger().removeHandler(handler)
        configure_logging(get_settings(), "portnet-web")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("portnet-test INFO portnet.test: bonjour [payment=PN00000000F00D]")
    assert second.endswith("portnet.test: sans paiement")
