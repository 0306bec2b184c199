"""The application factory: API, portal and partner callbacks.

``uvicorn web.app:create_app --factory``. The Temporal client is connected lazily and reconnected
on demand, so the portal starts (and /readyz says what is missing) even while Temporal is not up.
In production the factory refuses to build an app on unsafe settings (portnet/production.py). The
partner sandboxes are not part of the portal in any environment: they are their own app and
process (sandbox/app.py, ``SANDBOX_BASE_URL``), which the portal only links to in development.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client, Interceptor

from portnet import telemetry
from portnet.heap import settle_heap
from portnet.logs import RequestScope, configure_logging
from portnet.production import refuse_unsafe_production
from portnet.settings import Settings, get_settings
from portnet.temporal_codec import data_converter, payload_codec
from web.api import access_requests, emitter_acks, health, invoices, marsa_maroc, payments, session
from web.api import finance as finance_api
from web.api import reconciliation as reconciliation_api
from web.api.validation import VALIDATION_ERROR_SCHEMA
from web.channels import api_routers, page_routers
from web.codec_server import router as codec_router
from web.deps import PasswordChangeRequired, password_change_required_response
from web.limits import reject_unstorable_text
from web.locale import ApiErrorLanguage, RequestLanguage
from web.metrics import RequestTimer
from web.metrics import router as metrics_router
from web.pages.errors import install_error_pages
from web.pages.portal import router as pages_router
from web.security import install_security
from web.verification import router as verification_router

log = logging.getLogger("portnet.web")
STATIC = Path(__file__).parent / "static"


class TemporalConnection:
    """One shared client; a failed connect is retried at the next request, not at import time."""

    def __init__(
        self, settings: Settings, client: Client | None = None, interceptors: Sequence[Interceptor] = ()
    ) -> None:
        self._settings = settings
        self._client = client
        self._interceptors = list(interceptors)  # tracing's, when on (portnet/telemetry.py)
        # Built now, not at the first connect: a missing production key stops the portal at startup.
        self._converter = data_converter(settings)
        self._lock = asyncio.Lock()

    async def get(self) -> Client | None:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(
                        Client.connect(
                            self._settings.temporal_address,
                            namespace=self._settings.temporal_namespace,
                            data_converter=self._converter,
                            interceptors=self._interceptors,
                        ),
                        timeout=5,
                    )
                except Exception as exc:  # noqa: BLE001 - reported by /readyz, retried next time
                    log.warning("Temporal unreachable at %s: %s", self._settings.temporal_address, exc)
        return self._client


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[None]:
    """Once the portal is built and its server starts: what it loaded leaves the collector's sight
    (portnet/heap.py)."""
    settle_heap()
    yield


def create_app(settings: Settings | None = None, temporal_client: Client | None = None) -> FastAPI:
    settings = settings or get_settings()
    refuse_unsafe_production(settings)
    configure_logging(settings, "portnet-web")
    tracing = telemetry.tracer_provider(settings, "portnet-web")
    app = FastAPI(
        title="PortNet Payments",
        description="Plateforme communautaire de paiement multicanal — API JSON.",
        version="0.1.0",
        # A body is JSON only when its Content-Type says so (never text/plain, a form, or nothing):
        # a cross-site page cannot send such a body without a CORS preflight we never grant. The
        # default since FastAPI 0.132 (pinned in pyproject.toml); stated here so it cannot drift.
        strict_content_type=True,
        dependencies=[Depends(reject_unstorable_text)],
        lifespan=served,
    )
    app.state.settings = settings
    interceptors = telemetry.temporal_interceptors(tracing)
    app.state.temporal = TemporalConnection(settings, temporal_client, interceptors)
    app.state.payload_codec = payload_codec(settings)
    app.include_router(health.router)
    app.include_router(metrics_router)
    app.include_router(session.router)
    app.include_router(invoices.router)
    app.include_router(payments.router)
    for channel_api in api_routers():  # each channel's callbacks and payer actions (web/channels/)
        app.include_router(channel_api)
    app.include_router(emitter_acks.router)
    app.include_router(finance_api.router)
    app.include_router(reconciliation_api.router)
    app.include_router(marsa_maroc.router)
    app.include_router(access_requests.router)
    app.include_router(codec_router)
    app.include_router(pages_router)
    app.include_router(verification_router)  # public: a receipt's QR code leads here
    for channel_pages in page_routers():
        app.include_router(channel_pages, include_in_schema=False)
    install_error_pages(app)
    app.add_exception_handler(PasswordChangeRequired, password_change_required_response)
    install_security(app, settings)
    app.add_middleware(ApiErrorLanguage)  # outside the security refusals: they are translated too
    app.add_middleware(RequestLanguage)
    # Outermost: times (and names in logs) every answer, the security refusals included.
    app.add_middleware(RequestTimer)
    app.add_middleware(RequestScope)
    telemetry.instrument_app(app, tracing)
    _document_validation_errors(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _document_validation_errors(app: FastAPI) -> None:
    """The OpenAPI document shows the 422 the API really sends (web/api/validation.py)."""

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        first = app.openapi_schema is None
        schema = generate()
        if first:  # FastAPI caches the document: patched once, in place
            schemas = schema.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = VALIDATION_ERROR_SCHEMA
                schemas.pop("ValidationError", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
