"""Shared pieces of the sandbox tests: the receiver that plays our platform, and form builders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from portnet.protocols import amanpay as amanpay_protocol
from portnet.protocols import cmi as cmi_protocol
from portnet.protocols import fatourati as proto
from portnet.protocols.amanpay import AMANPAY_HEADER, PAYDIRECT_HEADER, Message
from portnet.settings import Settings

RECEIVER = "http://portal.test"
SANDBOX = "http://sandbox.test/sandbox/"
NOTIFY_URL = f"{RECEIVER}/amanpay/notify"
__all__ = ["AMANPAY_HEADER", "PAYDIRECT_HEADER", "Message"]  # our side's names, for the tests


@asynccontextmanager
async def sandbox_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox's HTTP API; relative paths (``"cmi/"``, ``"/mail"``) are under ``/sandbox/``."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=SANDBOX) as http:
        yield http


def assert_french_page(reply: httpx.Response, text: str) -> None:
    """A page people click through: HTML, in French, saying ``text``."""
    assert reply.status_code == 200, reply.url
    assert reply.headers["content-type"].startswith("text/html"), reply.url
    assert text in reply.text and '<html lang="fr">' in reply.text, reply.url


@dataclass
class Receiver:
    """Records every call and answers from a script (the last answer repeats)."""

    callback_answers: list[tuple[int, str]] = field(default_factory=lambda: [(200, "ACTION=POSTAUTH")])
    ack_statuses: list[int] = field(default_factory=lambda: [200])
    notification_statuses: list[int] = field(default_factory=lambda: [200])
    callbacks: list[dict[str, str]] = field(default_factory=list)
    acks: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    notifications: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

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

        @app.post("/amanpay/notify")
        async def notification(request: Request) -> Response:
            self.notifications.append((await request.body(), dict(request.headers)))
            index = min(len(self.notifications), len(self.notification_statuses)) - 1
            return JSONResponse({"status": "ok"}, status_code=self.notification_statuses[index])

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


# --- Amanpay and PayDirect, signed by OUR implementation (both sides must agree) ------------------


def signed_json(
    body: dict[str, Any], key: str, message: Message, header: str
) -> tuple[bytes, dict[str, str]]:
    raw = amanpay_protocol.dumps(body)
    return raw, {"Content-Type": "application/json", header: amanpay_protocol.sign(key, message, raw)}


def status_headers(key: str, order_id: str) -> dict[str, str]:
    """A status look-up is a GET: its signature covers the order id."""
    return {AMANPAY_HEADER: amanpay_protocol.sign(key, Message.ORDER_STATUS, order_id.encode())}


def notification_verifies(key: str, body: bytes, headers: dict[str, str]) -> bool:
    """What our callback endpoint checks of an Amanpay notification's signature."""
    signature = headers.get(AMANPAY_HEADER.lower())
    return amanpay_protocol.verify(key, Message.NOTIFICATION, body, signature)


def answer_verifies(reply: httpx.Response, key: str, message: Message, header: str) -> bool:
    return amanpay_protocol.verify(key, message, reply.content, reply.headers.get(header))


async def amanpay_order(
    client: httpx.AsyncClient,
    settings: Settings,
    order_id: str,
    method: str = "code",
    amount: str = "1920.00",
    **extra: Any,
) -> httpx.Response:
    """An order as our adapter creates it (activities/amanpay.py), notifications to the receiver."""
    body = {
        "merchant_id": settings.amanpay_merchant_id,
        "order_id": order_id,
        "amount": amount,
        "method": method,
        "notify_url": NOTIFY_URL,
        "return_url": f"{RECEIVER}/paiements/{order_id}",
        "customer": {"email": "tresorerie@sataa.ma"},
        **extra,
    }
    raw, headers = signed_json(body, settings.amanpay_secret_key, Message.ORDER_CREATE, AMANPAY_HEADER)
    return await client.post("/amanpay/api/orders", content=raw, headers=headers)


# --- CMI Fatourati, signed by OUR implementation ------------------------------------------------


def token_request(
    settings: Settings, order_id: str, expires: datetime, amount: str = "3600.00"
) -> dict[str, object]:
    fields: dict[str, object] = {
        "amount": amount,
        "currency": "504",
        "merchantCode": settings.fatourati_merchant_code,
        "storeId": settings.fatourati_store_id,
        "orderId": order_id,
        "expiryDate": expires.isoformat(),
    }
    return {
        **proto.signed(fields, proto.TOKEN_REQUEST, settings.fatourati_api_key),
        "items": [{"ref": "00069321", "amount": "1800.00"}, {"ref": "00069322", "amount": "1800.00"}],
        "callbackUrl": "http://merchant.test/callback",
        "customer": {"name": "SATAA", "email": "t@sataa.ma"},
    }
