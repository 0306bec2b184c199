"""An imitation SMS gateway: it takes messages over HTTP and keeps them in each phone's inbox.

The PayDirect sandbox sends its secret codes through it (``SMS_GATEWAY_URL``), as the bank sends
them through an operator; the inbox page (or ``?to=`` for JSON) is the payer's phone. Messages are
kept in the sandbox's store: a code sent before a restart can still be read after it.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sandbox.context import Sandbox, sandbox_of
from sandbox.store import Record, Tx

router = APIRouter(prefix="/sms")


def normalize_phone(phone: str) -> str:
    """``0600000001``, ``00212600000001``, ``+212 600-000001``: ``+212600000001``."""
    digits = "".join(c for c in phone if c.isdigit())
    if digits.startswith("00"):
        digits = digits[2:]
    if digits.startswith("0") and len(digits) == 10:
        digits = "212" + digits[1:]
    return "+" + digits


class Sms(Record):
    kind = "sms"

    id: int
    to: str
    sender: str
    text: str
    at: str

    def key(self) -> str:
        return str(self.id)

    def secondary(self) -> str:
        return self.to


def store_sms(tx: Tx, to: str, text: str, sender: str, at: datetime) -> Sms:
    message = Sms(
        id=tx.next_number("sms"),
        to=normalize_phone(to),
        sender=sender,
        text=text,
        at=at.isoformat(timespec="seconds"),
    )
    tx.put(message)
    return message


async def receive(sandbox: Sandbox, to: str, text: str, sender: str) -> Sms:
    return await sandbox.store.call(lambda tx: store_sms(tx, to, text, sender, sandbox.clock()))


@router.post("/messages", name="sms_send")
async def sms_send(request: Request) -> JSONResponse:
    try:
        data = await request.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return JSONResponse({"detail": "JSON object expected: {to, text, sender}"}, status_code=400)
    message = await receive(
        sandbox_of(request), str(data.get("to", "")), str(data.get("text", "")), str(data.get("sender", ""))
    )
    return JSONResponse({"id": message.id, "status": "queued"}, status_code=202)


@router.get("", name="sms_inbox")
async def sms_inbox(request: Request) -> Response:
    sandbox = sandbox_of(request)
    to = request.query_params.get("to")
    if to is not None:
        number = normalize_phone(to)
        found = await sandbox.store.call(lambda tx: tx.find(Sms, number, newest_first=True))
        return JSONResponse([m.model_dump() for m in found])
    phone = request.query_params.get("phone")
    shown = normalize_phone(phone) if phone else None
    messages = await sandbox.store.call(lambda tx: tx.all(Sms, newest_first=True))
    phones = sorted({m.to for m in messages})
    context = {
        "messages": [m for m in messages if shown is None or m.to == shown],
        "phone": shown,
        "phones": phones,
    }
    return sandbox.page(request, "sms/inbox.html", context)
