"""Traces: one OpenTelemetry trace follows a payment from the API call through its workflow and
activities, partner HTTP calls and SQL statements included.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: then nothing is instrumented and no interceptor
is added, so tracing costs nothing. On, the process gets a tracer provider exporting over OTLP/HTTP
(``<endpoint>/v1/traces``, batched) and:

- the portal's FastAPI app is instrumented (a server span per request, :func:`instrument_app`);
- the Temporal client carries ``TracingInterceptor`` (:func:`temporal_interceptors`), which puts the
  trace context in the start/signal/update headers; the worker, built on that client, continues it
  in ``RunWorkflow``, ``StartActivity`` and ``RunActivity`` spans;
- httpx (partner calls) and SQLAlchemy (the ledger's engine) are instrumented process-wide.

Tests pass their own provider (an in-memory exporter) to the same functions.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.client import Interceptor

from portnet.settings import Settings

log = logging.getLogger("portnet.telemetry")

_provider: TracerProvider | None = None


def tracer_provider(settings: Settings, service: str) -> TracerProvider | None:
    """This process's provider, made at the first call when an OTLP endpoint is configured.

    Also instruments httpx and the ledger's SQLAlchemy engine, once, and makes the provider the
    global one (so that libraries asking ``trace.get_tracer`` join the same traces).
    """
    global _provider
    endpoint = settings.otel_exporter_otlp_endpoint.strip()
    if not endpoint:
        return None
    if _provider is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint))))
        trace.set_tracer_provider(provider)
        instrument_libraries(provider)
        log.info("traces exported to %s as %s", endpoint, service)
        _provider = provider
    return _provider


def traces_url(endpoint: str) -> str:
    """OTLP/HTTP's traces path under the collector's base URL, as the OTel specification derives it."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def instrument_libraries(provider: TracerProvider) -> None:
    """httpx (every partner call) and the ledger's engine (every SQL statement)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    from portnet.db import get_engine

    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _SqlSpans.attach(get_engine(), provider)


def uninstrument_libraries() -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    _SqlSpans.detach()


class _SqlSpans:
    """A client span per SQL statement on the ledger's engine.

    Two engine events rather than opentelemetry-instrumentation-sqlalchemy, whose releases lag
    SQLAlchemy's (it refuses 2.1, and patches the asyncio extension, which needs greenlet, we do
    not). The statement text is recorded (bound parameters are never: they hold payers' data).
    """

    _attached: tuple[Any, _SqlSpans] | None = None

    def __init__(self, provider: TracerProvider, system: str) -> None:
        self.tracer = provider.get_tracer("portnet.sql")
        self.system = system

    @classmethod
    def attach(cls, engine: Any, provider: TracerProvider) -> None:
        import sqlalchemy as sa

        cls.detach()
        hooks = cls(provider, engine.dialect.name)
        sa.event.listen(engine, "before_cursor_execute", hooks.before)
        sa.event.listen(engine, "after_cursor_execute", hooks.after)
        sa.event.listen(engine, "handle_error", hooks.error)
        cls._attached = (engine, hooks)

    @classmethod
    def detach(cls) -> None:
        import sqlalchemy as sa

        if cls._attached is None:
            return
        engine, hooks = cls._attached
        sa.event.remove(engine, "before_cursor_execute", hooks.before)
        sa.event.remove(engine, "after_cursor_execute", hooks.after)
        sa.event.remove(engine, "handle_error", hooks.error)
        cls._attached = None

    def before(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        operation = statement.split(None, 1)[0].upper() if statement.strip() else "SQL"
        span = self.tracer.start_span(
            f"{operation} {self.system}",
            kind=trace.SpanKind.CLIENT,
            attributes={"db.system": self.system, "db.statement": statement[:2000]},
        )
        context._portnet_span = span

    def after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        span = getattr(context, "_portnet_span", None)
        if span is not None:
            span.end()

    def error(self, exception_context: Any) -> None:
        span = getattr(exception_context.execution_context, "_portnet_span", None)
        if span is not None:
            failure = type(exception_context.original_exception).__name__
            span.set_status(trace.Status(trace.StatusCode.ERROR, failure))
            span.end()


def temporal_interceptors(provider: TracerProvider | None) -> list[Interceptor]:
    """The Temporal client's interceptors: the tracing one when tracing is on, none otherwise."""
    if provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(provider.get_tracer("temporalio"))]


def instrument_app(app: Any, provider: TracerProvider | None) -> None:
    """A server span per portal request (none for /metrics and the health probes)."""
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="metrics,healthz,readyz")


def current_trace_id() -> str | None:
    """The current span's trace id (32 hex digits), for log lines; ``None`` outside any trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
