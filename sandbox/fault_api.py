"""The faults' admin API (``/sandbox/{partner}/admin/faults``, ``/sandbox/faults``) and the ASGI
middleware that makes the partners' merchant APIs show them (sandbox/faults.py says which).

The middleware sits in front of the routes, so a partner's own code does not know it is faulty:
a server error is answered before the partner sees the call (nothing changes in its state), a slow
answer is the partner's real answer, late; a hang is a 504 after ``hang_seconds`` (the caller has
given up long before). Every faulty answer carries ``X-Sandbox-Fault`` so logs and tests can tell.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox import faults
from sandbox.context import Sandbox, sandbox_of
from sandbox.store import Tx

FAULT_HEADER = "X-Sandbox-Fault"

router = APIRouter()


def _answer(record: faults.PartnerFaults) -> dict[str, Any]:
    return {
        "partner": record.partner,
        "name": faults.BY_SLUG[record.partner].name,
        "settings": record.settings.model_dump(),
        "active": record.settings.active,
        "draws": record.draws,
        "injected": record.injected,
    }


async def _body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


def _admin_routes(partner: str) -> None:
    async def read(request: Request) -> JSONResponse:
        record = await sandbox_of(request).store.call(lambda tx: faults.faults_of(tx, partner))
        return JSONResponse(_answer(record))

    async def put(request: Request) -> JSONResponse:
        """Replaces the partner's fault settings (absent fields: no fault)."""
        parsed = faults.parse_settings(await _body(request))
        if isinstance(parsed, str):
            return JSONResponse({"error": "bad_request", "message": parsed}, 400)
        record = await sandbox_of(request).store.call(lambda tx: faults.set_faults(tx, partner, parsed))
        return JSONResponse(_answer(record))

    async def delete(request: Request) -> JSONResponse:
        record = await sandbox_of(request).store.call(lambda tx: faults.reset_faults(tx, partner))
        return JSONResponse(_answer(record))

    path = f"/{partner}/admin/faults"
    router.add_api_route(path, read, methods=["GET"], name=f"{partner}_faults")
    router.add_api_route(path, put, methods=["PUT", "POST"], name=f"{partner}_set_faults")
    router.add_api_route(path, delete, methods=["DELETE"], name=f"{partner}_reset_faults")


for _partner in faults.PARTNERS:
    _admin_routes(_partner.slug)


@router.get("/faults", name="sandbox_faults")
async def every_partner(request: Request) -> JSONResponse:
    records = await sandbox_of(request).store.call(faults.all_faults)
    return JSONResponse({"partners": [_answer(r) for r in records]})


@router.put("/faults", name="sandbox_set_all_faults")
async def set_every_partner(request: Request) -> JSONResponse:
    """The same settings for every partner (what the chaos harness does); ``{}`` turns all off."""
    parsed = faults.parse_settings(await _body(request))
    if isinstance(parsed, str):
        return JSONResponse({"error": "bad_request", "message": parsed}, 400)

    def set_all(tx: Tx) -> list[faults.PartnerFaults]:
        return [faults.set_faults(tx, p.slug, parsed.model_copy(deep=True)) for p in faults.PARTNERS]

    records = await sandbox_of(request).store.call(set_all)
    return JSONResponse({"partners": [_answer(r) for r in records]})


@router.delete("/faults", name="sandbox_reset_all_faults")
async def reset_every_partner(request: Request) -> JSONResponse:
    def reset_all(tx: Tx) -> list[faults.PartnerFaults]:
        return [faults.reset_faults(tx, p.slug) for p in faults.PARTNERS]

    records = await sandbox_of(request).store.call(reset_all)
    return JSONResponse({"partners": [_answer(r) for r in records]})


@router.post("/faults/release-held", name="sandbox_release_held")
async def release_held(request: Request) -> JSONResponse:
    """Held-back callbacks and delayed duplicates go out now (the "late" event arrives)."""
    return JSONResponse({"released": await sandbox_of(request).outbox.release_held()})


class PartnerFaultMiddleware:
    """Pure ASGI (no response buffering): draws a fault for each call to a partner's merchant API."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        partner = faults.partner_of_request(scope["method"], scope["path"])
        if partner is None:
            await self.app(scope, receive, send)
            return
        drawn = await self.sandbox.store.call(lambda tx: faults.draw_api_fault(tx, partner))
        if drawn is None:
            await self.app(scope, receive, send)
            return
        kind, settings = drawn
        if kind == "slow":
            await self.sandbox.pause(settings.slow_seconds)
            await self.app(scope, receive, _tagged(send, kind))
            return
        if kind == "timeout":
            await self.sandbox.pause(settings.hang_seconds)
            status, message = 504, "Délai dépassé."
        else:
            status, message = settings.error_status, "Service momentanément indisponible."
        body = json.dumps({"error": "unavailable", "message": message}).encode()
        response = Response(body, status, {FAULT_HEADER: kind}, media_type="application/json")
        await response(scope, receive, send)


def _tagged(send: Send, kind: str) -> Send:
    async def tagged(message: Any) -> None:
        if message["type"] == "http.response.start":
            message = {
                **message,
                "headers": [*message.get("headers", []), (b"x-sandbox-fault", kind.encode())],
            }
        await send(message)

    return tagged
