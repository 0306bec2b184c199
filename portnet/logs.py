"""Log lines operators can search: one line per record, JSON in production, each carrying the payment
id, the workflow id and the trace id wherever they are known.

``LOG_FORMAT`` (portnet/settings.py) is ``json`` by default in production and ``text`` in development.
Where the ids come from, without any caller passing them:

- in an activity, ``activity.info()`` (the workflow id; the payment id is the workflow id's
  ``payment-`` suffix); in a workflow, the ``temporal_workflow`` extra of ``workflow.logger``;
- in a portal request, the route's path parameters (``/api/v1/payments/{payment_id}``...), read from
  the request scope a middleware puts in a context variable (:class:`RequestScope`);
- anywhere, ``extra={"payment_id": ...}`` or :func:`bind_payment` for code that knows better;
- the trace id from the current OpenTelemetry span, when tracing is on.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio import activity

from portnet.settings import Settings
from portnet.telemetry import current_trace_id

_payment: ContextVar[str | None] = ContextVar("portnet_log_payment", default=None)
_scope: ContextVar[Scope | None] = ContextVar("portnet_log_request_scope", default=None)

WORKFLOW_PREFIXES = ("payment-",)


@contextmanager
def bind_payment(payment_id: str | None) -> Iterator[None]:
    """Every record logged inside carries this payment id."""
    token = _payment.set(payment_id)
    try:
        yield
    finally:
        _payment.reset(token)


def _payment_of_workflow(workflow_id: str | None) -> str | None:
    for prefix in WORKFLOW_PREFIXES:
        if workflow_id and workflow_id.startswith(prefix):
            return workflow_id.removeprefix(prefix)
    return None


def correlation(record: logging.LogRecord) -> dict[str, str | None]:
    """The payment id, workflow id and trace id known where ``record`` was logged."""
    payment_id = getattr(record, "payment_id", None) or _payment.get()
    workflow_id = getattr(record, "workflow_id", None)
    workflow_extra = getattr(record, "temporal_workflow", None) or getattr(record, "temporal_activity", None)
    if not workflow_id and isinstance(workflow_extra, dict):
        workflow_id = workflow_extra.get("workflow_id")
    if not workflow_id and activity.in_activity():
        workflow_id = activity.info().workflow_id
    scope = _scope.get()
    if not payment_id and scope is not None:
        params = scope.get("path_params") or {}
        payment_id = params.get("payment_id")
    return {
        "payment_id": payment_id or _payment_of_workflow(workflow_id),
        "workflow_id": workflow_id,
        "trace_id": current_trace_id(),
    }


class CorrelationFilter(logging.Filter):
    """Sets ``payment_id``, ``workflow_id`` and ``trace_id`` on every record (``None`` if unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in correlation(record).items():
            setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the ids only when known, an exception as one escaped string."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("payment_id", "workflow_id", "trace_id"):
            value = getattr(record, name, None)
            if value:
                line[name] = value
        if getattr(record, "audit_event", None):
            line["event"] = record.audit_event  # type: ignore[attr-defined]
            line["fields"] = getattr(record, "audit_fields", {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Development's readable line; the ids that are known follow the message (``payment=PN...``)."""

    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [
            f"{label}={value}"
            for label, name in (("payment", "payment_id"), ("workflow", "workflow_id"), ("trace", "trace_id"))
            if (value := getattr(record, name, None))
        ]
        head, newline, rest = line.partition("\n")  # ids on the first line, before any traceback
        return f"{head} [{' '.join(ids)}]{newline}{rest}" if ids else line


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, so that configuring twice (every portal app the tests build) replaces, never doubles."""


def configure_logging(settings: Settings, service: str, stream: Any = None) -> logging.Handler:
    """The root logger writes one line per record in ``LOG_FORMAT``; uvicorn's loggers go through it."""
    handler = _Handler(stream or sys.stderr)
    handler.addFilter(CorrelationFilter())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(TextFormatter(service))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    if settings.log_format == "json":
        # uvicorn's own handlers write plain text: its records join ours, one JSON line each.
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
    return handler


class RequestScope:
    """Pure ASGI middleware: the request's scope in a context variable, for :func:`correlation`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _scope.set(scope if scope["type"] == "http" else None)
        try:
            await self.app(scope, receive, send)
        finally:
            _scope.reset(token)
