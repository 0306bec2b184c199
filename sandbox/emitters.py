"""Imitation emitters (ANP, MARSA MAROC, ...) that receive our settlement notices and acknowledge them.

An emitter is another company's system: it reads our notice (a JSON object of the agreed shape),
then authenticates it by its HMAC signature, takes it once however often we retry, and acknowledges
later, on its own schedule, with a signed call to the URL we gave. Signatures are HMAC-SHA256 (hex,
header ``X-PortNet-Signature``) with the shared key over the message type's label, a newline and the
raw body: ``EMITTER_SETTLEMENT_NOTICE`` for our notices, ``EMITTER_ACK`` for the acknowledgements, so
that neither can pass for the other. Notices are kept in the sandbox's store and each
acknowledgement is a delivery (sandbox/deliveries.py): one scheduled before a restart still goes out
after it. The automatic acknowledgement can be suspended (a person's switch on the page, kept too)
to observe the waiting state, then released, or an acknowledgement sent by hand.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sandbox.context import Sandbox, sandbox_of
from sandbox.deliveries import Delivery, Purpose, Reply, cancel_delivery, new_delivery
from sandbox.store import Record, Tx

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
# Scheduled by the emitter's own job (which a suspended switch holds back), or sent by a person.
AUTO_ACK_DELIVERY, ACK_DELIVERY = "emitter_auto_ack", "emitter_ack"


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


class AckTry(BaseModel):
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


class Notice(Record):
    kind = "emitter_notice"

    emitter_code: str
    notice: SettlementNotice
    raw_body: str
    received_at: datetime
    emitter_ack_id: str
    acknowledged_at: str | None = None
    ack_body: str | None = None
    ack_tries: list[AckTry] = Field(default_factory=list)
    # scheduled | paused | sending | retrying | delivered | failed | refused
    ack_state: str = "scheduled"
    delivery_id: int | None = None

    def key(self) -> str:
        return notice_key(self.emitter_code, self.notice_id)

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


class AutoAck(Record):
    """The page's switch: when off, acknowledgements wait for a person (or for the switch)."""

    kind = "emitter_auto_ack"
    enabled: bool = True

    def key(self) -> str:
        return "switch"


def notice_key(code: str, notice_id: str) -> str:
    return f"{code.upper()}/{notice_id}"


def auto_ack_enabled(tx: Tx) -> bool:
    switch = tx.get(AutoAck, "switch")
    return switch is None or switch.enabled


def _acknowledgement(sandbox: Sandbox, tx: Tx, notice: Notice, purpose: str, delay: float) -> Delivery:
    """Built once: every retry and every re-send carries the same bytes, signature and timestamp."""
    if notice.ack_body is None:
        notice.acknowledged_at = sandbox.clock().isoformat()
        payload = {
            "notice_id": notice.notice_id,
            "emitter_code": notice.emitter_code,
            "emitter_ack_id": notice.emitter_ack_id,
            "acknowledged_at": notice.acknowledged_at,
        }
        notice.ack_body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    body = notice.ack_body.encode("utf-8")
    cancel_delivery(tx, notice.delivery_id)
    delivery = new_delivery(
        tx,
        purpose,
        subject=notice.key(),
        url=notice.notice.ack_url,
        body=notice.ack_body,
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, sandbox.settings.emitter_shared_key, ACK),
        },
        max_tries=sandbox.tuning.emitter_ack_max_tries,
        backoff_seconds=sandbox.tuning.emitter_ack_backoff_seconds,
        delay_seconds=delay,
    )
    notice.delivery_id = delivery.id
    tx.put(notice)
    return delivery


def schedule(sandbox: Sandbox, tx: Tx, notice: Notice) -> Delivery | None:
    """The automatic acknowledgement, after the usual delay; held back while the switch is off."""
    if not auto_ack_enabled(tx):
        notice.ack_state = "paused"
        tx.put(notice)
        return None
    notice.ack_state = "scheduled"
    return _acknowledgement(sandbox, tx, notice, AUTO_ACK_DELIVERY, sandbox.tuning.emitter_ack_delay_seconds)


def _before_auto_ack(tx: Tx, delivery: Delivery) -> bool:
    notice = tx.get(Notice, delivery.subject)
    if notice is None:
        return False
    if not auto_ack_enabled(tx):
        notice.ack_state, notice.delivery_id = "paused", None
        tx.put(notice)
        return False
    if notice.ack_state == "scheduled":
        notice.ack_state = "sending"
        tx.put(notice)
    return True


def _after_ack(tx: Tx, delivery: Delivery, reply: Reply) -> bool:
    notice = tx.get(Notice, delivery.subject)
    if notice is None:
        return True
    outcome = AckTry(
        at=reply.at,
        status_code=reply.status_code,
        answer=None if reply.text is None else reply.text[:2000],
        error=reply.error,
    )
    notice.ack_tries.append(outcome)
    done = outcome.delivered or not outcome.worth_retrying
    notice.ack_state = "delivered" if outcome.delivered else ("refused" if done else "retrying")
    tx.put(notice)
    return done


def _ack_abandoned(tx: Tx, delivery: Delivery) -> None:
    notice = tx.get(Notice, delivery.subject)
    if notice is not None:
        notice.ack_state = "failed"
        tx.put(notice)


def install(sandbox: Sandbox) -> None:
    sandbox.outbox.register(
        AUTO_ACK_DELIVERY, Purpose(after=_after_ack, before=_before_auto_ack, abandoned=_ack_abandoned)
    )
    sandbox.outbox.register(ACK_DELIVERY, Purpose(after=_after_ack, abandoned=_ack_abandoned))


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
    sandbox = sandbox_of(request)
    notices, enabled = await sandbox.store.call(lambda tx: (tx.all(Notice), auto_ack_enabled(tx)))
    notices.sort(key=lambda n: n.received_at, reverse=True)
    context = {
        "notices": notices,
        "auto_ack": enabled,
        "ack_delay_seconds": sandbox.tuning.emitter_ack_delay_seconds,
        "names": EMITTER_NAMES,
    }
    return sandbox.page(request, "emitters/index.html", context)


@router.post("/auto-ack", name="emitters_auto_ack")
async def toggle_auto_ack(request: Request) -> Response:
    """Resuming schedules the held acknowledgements again, each after the usual delay."""
    sandbox = sandbox_of(request)
    form = await request.form()
    enabled = str(form.get("enabled", "")).lower() in ("1", "true", "on", "yes")

    def switch(tx: Tx) -> list[Delivery]:
        tx.put(AutoAck(enabled=enabled))
        if not enabled:
            return []
        held = [n for n in tx.all(Notice) if n.ack_state == "paused"]
        return [d for n in held if (d := schedule(sandbox, tx, n)) is not None]

    for delivery in await sandbox.store.call(switch):
        await sandbox.outbox.dispatch(delivery.id, inline_tries=0)
    return RedirectResponse(str(request.url_for("emitters_index")), status_code=303)


@router.post("/{code}/settlements", name="emitters_settlements")
async def receive_notice(request: Request, code: str) -> JSONResponse:
    sandbox = sandbox_of(request)
    if not _CODE.match(code):
        return JSONResponse({"detail": "unknown emitter"}, 404)
    body = await request.body()
    try:
        notice_data = SettlementNotice.model_validate_json(body)
    except ValidationError:
        return JSONResponse({"detail": "invalid settlement notice"}, 422)
    if not signature_ok(body, request.headers.get(SIGNATURE_HEADER), sandbox.settings.emitter_shared_key):
        return JSONResponse({"detail": f"missing or invalid {SIGNATURE_HEADER}"}, 401)

    def take(tx: Tx) -> tuple[Notice, Delivery | None, bool]:
        existing = tx.get(Notice, notice_key(code, notice_data.notice_id))
        if existing is not None:
            return existing, None, False
        notice = Notice(
            emitter_code=code.upper(),
            notice=notice_data,
            raw_body=body.decode("utf-8"),
            received_at=sandbox.clock(),
            emitter_ack_id=f"{code.upper()}-ACK-{secrets.token_hex(6).upper()}",
        )
        return notice, schedule(sandbox, tx, notice), True

    notice, delivery, new = await sandbox.store.call(take)
    if not new:
        # Our retries must not create a second settlement: answer what we answered, plus progress.
        return JSONResponse({**_receipt(notice), **notice.as_json()}, 200)
    if delivery is not None:
        await sandbox.outbox.dispatch(delivery.id, inline_tries=0)
    return JSONResponse(_receipt(notice), 202)


@router.get("/{code}/settlements", name="emitters_notices")
async def notices_json(request: Request, code: str) -> JSONResponse:
    """The notices an emitter received, oldest first, with where each acknowledgement stands."""
    found = await sandbox_of(request).store.call(lambda tx: tx.all(Notice))
    mine = [n for n in found if n.emitter_code == code.upper()]
    return JSONResponse([{**n.as_json(), "payment_id": n.notice.payment_id} for n in mine])


@router.get("/{code}/settlements/{notice_id}", name="emitters_notice")
async def notice_json(request: Request, code: str, notice_id: str) -> JSONResponse:
    notice = await sandbox_of(request).store.call(lambda tx: tx.get(Notice, notice_key(code, notice_id)))
    if notice is None:
        return JSONResponse({"detail": "unknown notice"}, 404)
    return JSONResponse({**notice.as_json(), "notice": json.loads(notice.raw_body)})


@router.post("/{code}/settlements/{notice_id}/ack", name="emitters_ack")
async def send_ack(request: Request, code: str, notice_id: str) -> Response:
    """Sends (or sends again, same ack id and bytes) the acknowledgement now."""
    sandbox = sandbox_of(request)

    def by_hand(tx: Tx) -> Delivery | None:
        notice = tx.get(Notice, notice_key(code, notice_id))
        if notice is None:
            return None
        notice.ack_state = "sending"
        return _acknowledgement(sandbox, tx, notice, ACK_DELIVERY, 0.0)

    delivery = await sandbox.store.call(by_hand)
    if delivery is None:
        return JSONResponse({"detail": "unknown notice"}, 404)
    await sandbox.outbox.dispatch(delivery.id, inline_tries=1)  # first try awaited, retries behind
    if _wants_redirect(request):
        return RedirectResponse(str(request.url_for("emitters_index")), status_code=303)
    notice = await sandbox.store.call(lambda tx: tx.get(Notice, notice_key(code, notice_id)))
    assert notice is not None
    return JSONResponse(notice.as_json())
