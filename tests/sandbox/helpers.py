"""Shared pieces of the sandbox tests: the receiver that plays our platform, and form builders."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from portnet.protocols import cmi as cmi_protocol
from portnet.settings import Settings

RECEIVER = "http://portal.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Receiver:
    """Records every call and answers from a script (the last answer repeats)."""

    callback_answers: list[tuple[int, str]] = field(default_factory=lambda: [(200, "ACTION=POSTAUTH")])
    ack_statuses: list[int] = field(default_factory=lambda: [200])
    callbacks: list[dict[str, str]] = field(default_factory=list)
    acks: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/cmi/callback")
        async def callback(request: Request) -> Response:
            form = await request.form()
            self.callbacks.append({k: str(v) for k, v in form.multi_items()})
            index = min(len(self.callbacks), len(self.callback_answers)) - 1
            status, text = self.callback_answers[index]
            return PlainTextResponse(text, status_code=status)

        @app.post("/emitters/ack")
        async def ack(request: Request) -> Response:
            self.acks.append((await request.body(), dict(request.headers)))
            index = min(len(self.acks), len(self.ack_statuses)) - 1
            return PlainTextResponse("ok", status_code=self.ack_statuses[index])

        return app


def payment_form(settings: Settings, oid: str = "PN-2026-000123", **extra: Any) -> dict[str, str]:
    """Built by OUR implementation, so every test also checks that both sides agree."""
    fields = cmi_protocol.build_payment_fields(
        client_id=settings.cmi_client_id,
        store_key=settings.cmi_store_key,
        oid=oid,
        amount="3600.00",
        ok_url=f"{RECEIVER}/cmi/ok",
        fail_url=f"{RECEIVER}/cmi/fail",
        shop_url=f"{RECEIVER}/cmi/cancel",
        callback_url=f"{RECEIVER}/cmi/callback",
        rnd="a1b2c3d4e5",
        email="finance@transit-atlas.ma",
        bill_to_name="Transit Atlas SARL",
        bill_to_company="Transit Atlas",
        tel="+212522000000",
        session_timeout=extra.pop("session_timeout", 900),
    )
    if extra:
        fields.update(extra)
        fields["HASH"] = cmi_protocol.compute_hash(fields, settings.cmi_store_key)
    return fields


async def open_session(
    client: httpx.AsyncClient, settings: Settings, oid: str = "PN-2026-000123", **extra: Any
) -> str:
    reply = await client.post("/cmi/fim/est3Dgate", data=payment_form(settings, oid, **extra))
    assert reply.status_code == 200, reply.text
    return oid
