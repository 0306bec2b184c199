"""The partner sandboxes: their own FastAPI app and process (``python -m sandbox``), on port 8001.

They stand for other companies (CMI, Amanpay, Banque Populaire, MARSA MAROC, the emitters), so
they run apart from the portal: a portal restart does not wipe "the bank's" memory, and their CPU
is not counted as ours. Every page and API is under ``/sandbox/...``, as the partner URLs in our
settings expect. Their state is a SQLite file of their own (``SANDBOX_DATABASE_URL``); on start,
the callbacks and acknowledgements a previous run left pending go on, and the SMTP mail sink
(``SANDBOX_SMTP_PORT``) starts with them. Each partner can be told to misbehave (sandbox/faults.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from portnet.settings import Settings, get_settings
from sandbox import (
    amanpay,
    amanty,
    cmi_card,
    emitters,
    fatourati,
    fatourati_pages,
    mail,
    marsa_maroc,
    paydirect,
    sms,
    tashilat,
)
from sandbox import faults as partner_faults
from sandbox.context import Sandbox, sandbox_of
from sandbox.fault_api import PartnerFaultMiddleware
from sandbox.fault_api import router as faults_router

PREFIX = "/sandbox"


def create_sandbox_app(settings: Settings | None = None, mail_sink: bool = True) -> FastAPI:
    """``uvicorn sandbox.app:create_sandbox_app --factory``; ``mail_sink=False`` for tests that do
    not need the SMTP server (their port may be taken by another sandbox of the same run)."""
    settings = settings or get_settings()
    sandbox = Sandbox.open(settings)
    for partner in (cmi_card, fatourati, amanpay, emitters):
        partner.install(sandbox)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(sandbox, mail_sink=mail_sink):
            yield

    app = FastAPI(
        title="PortNet — bacs à sable des partenaires",
        description="Imitations de CMI, Amanpay, PayDirect, MARSA MAROC, des émetteurs et d'une boîte mail, "
        "joignables en HTTP seulement.",
        docs_url=f"{PREFIX}/docs",
        openapi_url=f"{PREFIX}/openapi.json",
        swagger_ui_oauth2_redirect_url=f"{PREFIX}/docs/oauth2-redirect",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/", response_class=HTMLResponse, name="sandbox_index")
    async def index(request: Request) -> HTMLResponse:
        handle = sandbox_of(request)
        faults = await handle.store.call(partner_faults.all_faults)
        return handle.page(request, "index.html", {"settings": settings, "faults": faults})

    @routes.get("/healthz", name="sandbox_health")
    async def health(request: Request) -> JSONResponse:
        """Answers once the store answers: what `make run` waits for before starting the portal."""
        await sandbox_of(request).store.call(lambda tx: None)
        return JSONResponse({"status": "ok"})

    for partner_router in (
        faults_router,
        cmi_card.router,
        fatourati.router,
        fatourati_pages.router,
        amanpay.router,
        tashilat.router,
        amanty.router,
        paydirect.router,
        sms.router,
        mail.router,
        emitters.router,
        marsa_maroc.router,
    ):
        routes.include_router(partner_router)
    app.include_router(routes)
    app.add_middleware(PartnerFaultMiddleware, sandbox=sandbox)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    return app


@asynccontextmanager
async def running(sandbox: Sandbox, mail_sink: bool = True) -> AsyncIterator[Sandbox]:
    """The sandbox at work: mail sink up, pending deliveries resumed; on exit, background work stops
    (what is pending stays in the store for the next start) and the store is closed."""
    sink = mail.MailSink(sandbox.settings, sandbox.store) if mail_sink else None
    if sink is not None:
        await sink.__aenter__()
    try:
        await sandbox.outbox.resume()
        yield sandbox
    finally:
        await sandbox.background.cancel_all()
        await sandbox.outbound.aclose()
        if sink is not None:
            await sink.__aexit__(None, None, None)
        await asyncio.to_thread(sandbox.store.close)
