"""The partner sandboxes as one ASGI app, mounted by the portal at ``/sandbox``.

All state lives on ``app.state`` so that each test builds a fresh world with a new app. A mounted
app's own lifespan never runs, so the portal's lifespan enters ``sandbox_lifespan(app)`` to start
the SMTP sink and to stop the sandboxes' background deliveries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from portnet.settings import Settings, get_settings
from sandbox import amanpay, cmi, emitters, fatourati, mail, marsa_maroc
from sandbox.runtime import Background, Outbound, make_templates


def create_sandbox_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="PortNet — bacs à sable des partenaires",
        description="Imitations de CMI, des émetteurs et d'une boîte mail, joignables en HTTP seulement.",
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.templates = make_templates()
    app.state.outbound = Outbound()
    app.state.background = Background()
    app.state.cmi = cmi.CmiState(settings=settings)
    app.state.emitters = emitters.EmitterState(
        settings=settings, ack_delay_seconds=settings.sandbox_emitter_ack_delay_seconds
    )
    app.state.fatourati = fatourati.FatouratiState(settings=settings)
    app.state.amanpay = amanpay.AmanpayState(settings=settings)
    app.state.marsa = marsa_maroc.MarsaState(settings=settings)
    app.state.mailbox = mail.Mailbox()
    app.state.mail_sink = mail.MailSink(settings, mailbox=app.state.mailbox)

    @app.get("/", response_class=HTMLResponse, name="sandbox_index")
    async def index(request: Request) -> HTMLResponse:
        response: HTMLResponse = request.app.state.templates.TemplateResponse(
            request, "index.html", {"settings": settings}
        )
        return response

    app.include_router(cmi.router)
    app.include_router(mail.router)
    app.include_router(emitters.router)
    app.include_router(fatourati.router)
    app.include_router(amanpay.router)
    app.include_router(marsa_maroc.router)
    return app


@asynccontextmanager
async def sandbox_lifespan(app: FastAPI, start_mail_sink: bool = True) -> AsyncIterator[FastAPI]:
    """For the portal's lifespan: ``async with sandbox_lifespan(sandbox_app): yield``."""
    sink: mail.MailSink = app.state.mail_sink
    if start_mail_sink:
        await sink.__aenter__()
    try:
        yield app
    finally:
        background: Background = app.state.background
        await background.cancel_all()
        if start_mail_sink:
            await sink.__aexit__(None, None, None)
