"""Fatourati's pages a person clicks through: the references issued, and one page per bank channel
(AttijariNet, CIH Online, CashPlus...) where a payer types a reference and pays it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sandbox.context import sandbox_of
from sandbox.fatourati import BY_CODE, CHANNELS, Token, pay

router = APIRouter(prefix="/fatourati")


@router.get("/", response_class=HTMLResponse, name="fatourati_index")
async def index(request: Request) -> Response:
    sandbox = sandbox_of(request)
    tokens = await sandbox.store.call(lambda tx: tx.all(Token, newest_first=True))
    now = sandbox.clock()
    context = {"channels": CHANNELS, "tokens": [(t, t.status(now)) for t in tokens]}
    return sandbox.page(request, "fatourati/index.html", context)


@router.get("/canal/{code}", response_class=HTMLResponse, name="fatourati_channel")
async def channel_page(request: Request, code: str) -> Response:
    channel = BY_CODE.get(code)
    if channel is None:
        return HTMLResponse("Canal inconnu", status_code=404)
    context: dict[str, Any] = {"channel": channel, "result": None, "form": {}}
    return sandbox_of(request).page(request, "fatourati/channel.html", context)


@router.post("/canal/{code}", response_class=HTMLResponse)
async def channel_pay(request: Request, code: str) -> Response:
    channel = BY_CODE.get(code)
    if channel is None:
        return HTMLResponse("Canal inconnu", status_code=404)
    form = {k: str(v) for k, v in (await request.form()).items()}
    sandbox = sandbox_of(request)
    result = await pay(sandbox, form.get("reference", ""), form.get("amount"), code)
    return sandbox.page(
        request, "fatourati/channel.html", {"channel": channel, "result": result, "form": form}
    )
