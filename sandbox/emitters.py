"""Imitation emitters (ANP, MARSA MAROC, ...) that receive our settlement notices and acknowledge them.

An emitter is another company's system: it reads our notice (a JSON object of the agreed shape),
then authenticates it by its HMAC signature, takes it once however often we retry, and acknowledges
later, on its own schedule, with a signed call to the URL we gave. Signatures are HMAC-SHA256 (hex,
header ``X-PortNet-Signature``) with the shared key over the message type's label, a newline and the
raw body: ``EMITTER_SETTLEMENT_NOTICE`` for our notices, ``EMITTER_ACK`` for the acknowledgements, so
that neither can pass for the other. Tests pause the automatic acknowledgement to observe the
waiting state, then release it by hand.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from portnet.settings import Settings
from sandbox.runtime import Background, Outbound, log

router = APIRouter(prefix="/emitters")

SIGNATURE_HEADER = "X-PortNet-Signature"
EMITTER_NAMES = {
    "ANP": "Agence Nationale des Ports",
    "MARSA_MAROC": "MARSA MAROC",
    "MARSAMAROC": "MARSA MAROC",
    "MARSA-MAROC": "MARSA MAROC",
}
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


SETTLEMENT_NOTICE = "EMITTER_SETTLEMENT_NOTICE"
ACK = "EMITTER_ACK"


def sign(body: bytes, key: str, label: str) -> str:
    return hmac.new(key.encode("utf-8"), label.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def signature_ok(body: bytes, header: str | None, key: str, label: str = SETTLEMENT_NOTICE) -> bool:
    if not header:
        return False
    return hmac.compare_digest(
        header.strip().lower().encode("ascii", "replace"), sign(body, key, label).encode("ascii")
    )


class InvoiceLine(BaseModel):
    model_config = ConfigDict(extra="allow")
    number: str
    amount_ttc: Decimal


class SettlementNotice(BaseModel):
    model_config = ConfigDict(extra="allow")
    notice_id: str
    payment_id: str | int
    invoices: list[InvoiceLine]
    amount: Decimal
    transaction_id: str | None = None
    paid_at: str
    ack_url: str

    @field_validator("ack_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("ack_url must be an http(s) URL")
        return value


@dataclass
class AckTry:
    at: datetime
    status_code: int | None
    answer: str | None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def worth_retrying(self) -> bool:
        """A refusal (4xx) will not change by itself; an outage or a 5xx may."""
        return self.status_code is None or self.status_code >= 500 or self.status_code in (408, 429)


@dataclass
class Notice:
    emitter_code: str
    notice: SettlementNotice
    raw_body: bytes
    received_at: datetime
    emitter_ack_id: str
    acknowledged_at: str | None = None
    ack_body: bytes | None = None
    ack_tries: list[AckTry] = field(default_factory=list)
    # scheduled | paused | sending | retrying | delivered | failed | refused
    ack_state: str = "scheduled"
    auto_task: asyncio.Task[Any] | None = None

    @property
    def notice_id(self) -> str:
        return self.notice.notice_id

    @property
    def invoices_total(self) -> Decimal:
        return sum((line.amount_ttc for line in self.notice.invoices), Decimal("0"))

    @property
    def amount_mismatch(self) -> bool:
        return self.invoices_total != self.notice.amount

    def as_json(self) -> dict[str, Any]:
        return {
            "notice_id": self.notice_id,
            "emitter_code": self.emitter_code,
            "status": "acknowledged" if self.ack_state == "delivered" else "received",
            "emitter_ack_id": self.emitter_ack_id,
            "received_at": self.received_at.isoformat(),
            "acknowledged_at": self.acknowledged_at,
            "ack_state": self.ack_state,
            "ack_tries": [
                {"at": t.at.isoformat(), "status_code": t.status_code, "answer": t.answer, "error": t.error}
                for t in self.ack_tries
            ],
        }


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class EmitterState:
    """Notices by (emitter, notice_id); ``auto_ack = False`` holds every acknowledgement back."""

    settings: Settings
    notices: dict[tuple[str, str], Notice] = field(default_factory=dict)
    auto_ack: bool = True
    ack_delay_seconds: float = 1.0
    ack_max_tries: int = 4
    ack_backoff_seconds: float = 0.5
    clock: Callable[[], datetime] = _utc_now


def _state(request: Request) -> EmitterState:
    state: EmitterState = request.app.state.emitters
    return state


def _key(code: str, notice_id: str) -> tuple[str, str]:
    return code.upper(), notice_id


def _ack_body(state: EmitterState, notice: Notice) -> bytes:
    """Built once: every retry carries the same bytes, hence the same signature and timestamp."""
    if notice.ack_body is None:
        notice.acknowledged_at = state.clock().isoformat()
        payload = {
            "notice_id": notice.notice_id,
            "emitter_code": notice.emitter_code,
            "emitter_ack_id": notice.emitter_ack_id,
            "acknowledged_at": notice.acknowledged_at,
        }
        notice.ack_body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return notice.ack_body


async def _send_once(state: EmitterState, outbound: Outbound, notice: Notice) -> AckTry:
    body = _ack_body(state, notice)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, state.settings.emitter_shared_key, ACK),
    }
    at = state.clock()
    try:
        async with outbound.client() as client:
            reply = await client.post(notice.notice.ack_url, content=body, headers=headers)
        outcome = AckTry(at=at, status_code=reply.status_code, answer=reply.text[:2000])
    except Exception as exc:  # the emitter's job must survive our outage
        outcome = AckTry(at=at, status_code=None, answer=None, error=f"{type(exc).__name__}: {exc}")
    notice.ack_tries.append(outcome)
    return outcome


def _settle(notice: Notice, outcome: AckTry) -> bool:
    """Update the state from one try; True when there is nothing more to do."""
    if outcome.delivered:
        notice.ack_state = "delivered"
        return True
    if not outcome.worth_retrying:
        notice.ack_state = "refused"
        return True
    return False


async def _retry(state: EmitterState, outbound: Outbound, notice: Notice) -> None:
    for number in range(1, state.ack_max_tries):
        await asyncio.sleep(state.ack_backoff_seconds * 2 ** (number - 1))
        if _settle(notice, await _send_once(state, outbound, notice)):
            return
    notice.ack_state = "failed"
    log.warning(
        "emitter sandbox: ack of %s abandoned after %d tries", notice.notice_id, len(notice.ack_tries)
    )


async def acknowledge(
    state: EmitterState, outbound: Outbound, background: Background, notice: Notice
) -> None:
    """First try awaited, retries in the background, like the CMI callback."""
    notice.ack_state = "sending"
    if _settle(notice, await _send_once(state, outbound, notice)):
        return
    if state.ack_max_tries <= 1:
        notice.ack_state = "failed"
        return
    notice.ack_state = "retrying"
    background.spawn(_retry(state, outbound, notice), name=f"emitter-ack-{notice.notice_id}")


async def _auto_acknowledge(
    state: EmitterState, outbound: Outbound, background: Background, notice: Notice
) -> None:
    await asyncio.sleep(state.ack_delay_seconds)
    notice.auto_task = None
    if not state.auto_ack:
        notice.ack_state = "paused"
        return
    await acknowledge(state, outbound, background, notice)


def _schedule(request: Request, notice: Notice) -> None:
    state, outbound, background = _state(request), request.app.state.outbound, request.app.state.background
    if not state.auto_ack:
        notice.ack_state = "paused"
        return
    notice.ack_state = "scheduled"
    notice.auto_task = background.spawn(
        _auto_acknowledge(state, outbound, background, notice), name=f"emitter-auto-ack-{notice.notice_id}"
    )


def _receipt(notice: Notice) -> dict[str, Any]:
    return {"notice_id": notice.notice_id, "status": "received", "emitter_ack_id": notice.emitter_ack_id}


def _wants_redirect(request: Request) -> bool:
    """A person clicked the page's button (a form post): send them back to the list, not to JSON."""
    form_post = request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    )
    return form_post or "text/html" in request.headers.get("accept", "")


@router.get("/", response_class=HTMLResponse, name="emitters_index")
async def notices_page(request: Request) -> HTMLResponse:
    state = _state(request)
    notices = sorted(state.notices.values(), key=lambda n: n.received_at, reverse=True)
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "emitters/index.html", {"notices": notices, "state": state, "names": EMITTER_NAMES}
    )
    return response


@router.post("/auto-ack", name="emitters_auto_ack")
async def toggle_auto_ack(request: Request) -> Response:
    """Resuming schedules the held acknowledgements again, each after the usual delay."""
    state = _state(request)
    form = await request.form()
    state.auto_ack = str(form.get("enabled", "")).lower() in ("1", "true", "on", "yes")
    if state.auto_ack:
        for notice in state.notices.values():
            if notice.ack_state == "paused":
                _schedule(request, notice)
    return RedirectResponse(str(request.url_for("emitters_index")), status_code=303)


@router.post("/{code}/settlements", name="emitters_settlements")
async def receive_notice(request: Request, code: str) -> JSONResponse:
    state = _state(request)
    if not _CODE.match(code):
        return JSONResponse({"detail": "unknown emitter"}, 404)
    body = await request.body()
    try:
        notice_data = SettlementNotice.model_validate_json(body)
    except ValidationError:
        return JSONResponse({"detail": "invalid settlement notice"}, 422)
    if not signature_ok(body, request.headers.get(SIGNATURE_HEADER), state.settings.emitter_shared_key):
        return JSONResponse({"detail": f"missing or invalid {SIGNATURE_HEADER}"}, 401)
    key = _key(code, notice_data.notice_id)
    existing = state.notices.get(key)
    if existing is not None:
        # Our retries must not create a second settlement: answer what we answered, plus progress.
        return JSONResponse({**_receipt(existing), **existing.as_json()}, 200)
    notice = Notice(
        emitter_code=code.upper(),
        notice=notice_data,
        raw_body=body,
        received_at=state.clock(),
        emitter_ack_id=f"{code.upper()}-ACK-{secrets.token_hex(6).upper()}",
    )
    state.notices[key] = notice
    _schedule(request, notice)
    return JSONResponse(_receipt(notice), 202)


@router.get("/{code}/settlements/{notice_id}", name="emitters_notice")
async def notice_json(request: Request, code: str, notice_id: str) -> JSONResponse:
    notice = _state(request).notices.get(_key(code, notice_id))
    if notice is None:
        return JSONResponse({"detail": "unknown notice"}, 404)
    return JSONResponse({**notice.as_json(), "notice": json.loads(notice.raw_body)})


@router.post("/{code}/settlements/{notice_id}/ack", name="emitters_ack")
async def send_ack(request: Request, code: str, notice_id: str) -> Response:
    """Sends (or sends again, same ack id and bytes) the acknowledgement now."""
    state = _state(request)
    notice = state.notices.get(_key(code, notice_id))
    if notice is None:
        return JSONResponse({"detail": "unknown notice"}, 404)
    if notice.auto_task is not None:
        notice.auto_task.cancel()
        notice.auto_task = None
    await acknowledge(state, request.app.state.outbound, request.app.state.background, notice)
    if _wants_redirect(request):
        return RedirectResponse(str(request.url_for("emitters_index")), status_code=303)
    return JSONResponse(notice.as_json())
