"""A development mail sink: an SMTP server that keeps what it receives, and the pages to read it.

The platform sends real SMTP (aiosmtplib) in every environment; in development it points at this
sink, which runs in the sandboxes' process, so receipts and notices are checked exactly as they
leave, attachments included, without a mail account. Messages are kept in the sandboxes' store
(the parsed message for the lists, its source apart, for the attachments and the raw view), so a
restart of either side keeps the mailbox. The SMTP server runs on aiosmtpd's own thread and event
loop; it writes through a worker thread like every other caller of the store.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from portnet.settings import Settings
from sandbox import faults
from sandbox.context import sandbox_of
from sandbox.store import Record, Store, Tx

router = APIRouter(prefix="/mail")


class Attachment(BaseModel):
    filename: str
    content_type: str
    size: int


class StoredMessage(Record):
    kind = "mail_message"

    id: int
    received_at: datetime
    mail_from: str
    to: list[str]
    header_to: list[str]
    subject: str
    date: datetime
    text: str | None
    html: str | None
    attachments: list[Attachment]

    def key(self) -> str:
        return str(self.id)

    def addressed_to(self, address: str) -> bool:
        wanted = address.strip().lower()
        return any(a.lower() == wanted for a in [*self.to, *self.header_to])

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from": self.mail_from,
            "to": self.to,
            "subject": self.subject,
            "date": self.date.isoformat(),
            "text": self.text,
            "html": self.html,
            "attachments": [a.model_dump() for a in self.attachments],
        }


class MessageSource(Record):
    """The message as it arrived, bytes for bytes (base64 in the store)."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")
    kind = "mail_source"

    id: int
    raw: bytes

    def key(self) -> str:
        return str(self.id)


def _parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    content = part.get_content()
    # SMTP carries CRLF line ends; readers (and tests) expect Python's "\n".
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


def attachments_of(message: EmailMessage) -> list[tuple[str, str, bytes]]:
    """(file name, content type, content) of each attachment, in order."""
    found: list[tuple[str, str, bytes]] = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        filename = part.get_filename() or f"piece-jointe-{len(found) + 1}"
        found.append((filename, part.get_content_type(), payload if isinstance(payload, bytes) else b""))
    return found


def receive(store: Store, raw: bytes, envelope_from: str | None, recipients: list[str]) -> StoredMessage:
    """Parsed first, then numbered and kept in one short transaction. Ids are never reused, even
    after the mailbox is emptied, so an old link cannot show another message. Blocking: call it
    from a worker thread."""
    message = _parse(raw)
    received_at = datetime.now(UTC)
    try:
        date = parsedate_to_datetime(str(message["Date"])) if message["Date"] else received_at
    except (TypeError, ValueError):
        date = received_at
    header_to = [addr for _, addr in getaddresses([str(v) for v in message.get_all("To", [])]) if addr]
    parsed = StoredMessage(
        id=0,
        received_at=received_at,
        mail_from=str(message["From"] or envelope_from or ""),
        to=list(recipients) or header_to,
        header_to=header_to,
        subject=str(message["Subject"] or ""),
        date=date,
        text=_body(message, "plain"),
        html=_body(message, "html"),
        attachments=[
            Attachment(filename=name, content_type=kind, size=len(content))
            for name, kind, content in attachments_of(message)
        ],
    )

    def keep(tx: Tx) -> StoredMessage:
        stored = parsed.model_copy(update={"id": tx.next_number("mail")})
        tx.put(stored)
        tx.put(MessageSource(id=stored.id, raw=raw))
        return stored

    return store.run(keep)


def messages(tx: Tx, to: str | None = None) -> list[StoredMessage]:
    """Newest first, optionally only those delivered to ``to``."""
    return [m for m in tx.all(StoredMessage, newest_first=True) if to is None or m.addressed_to(to)]


def clear(tx: Tx) -> None:
    tx.delete_all(StoredMessage)
    tx.delete_all(MessageSource)


class _Handler:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        drawn = await asyncio.to_thread(self.store.run, lambda tx: faults.draw_api_fault(tx, "mail"))
        if drawn is not None and drawn[0] == "error":
            return "451 4.3.0 Service momentanement indisponible"
        if drawn is not None:  # slow: accepted late; timeout: the client gave up long before
            await asyncio.sleep(drawn[1].slow_seconds if drawn[0] == "slow" else drawn[1].hang_seconds)
            if drawn[0] == "timeout":
                return "451 4.4.2 Delai depasse"
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        await asyncio.to_thread(receive, self.store, raw, envelope.mail_from, list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class MailSink:
    """The SMTP server on 127.0.0.1:``settings.sandbox_smtp_port``; start()/stop() or ``async with``."""

    def __init__(
        self, settings: Settings, store: Store, host: str = "127.0.0.1", port: int | None = None
    ) -> None:
        self.store = store
        self.host = host
        self.port = port if port is not None else settings.sandbox_smtp_port
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        """Blocks until the server answers (a few milliseconds); idempotent."""
        if self._controller is not None:
            return
        controller = Controller(_Handler(self.store), hostname=self.host, port=self.port)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is None:
            return
        controller, self._controller = self._controller, None
        controller.stop()

    async def __aenter__(self) -> MailSink:
        # Controller.start() waits on a thread and probes the port: keep the event loop free meanwhile.
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)


# --- pages ------------------------------------------------------------------------------------


def _wants_json(request: Request) -> bool:
    if request.query_params.get("format") == "json" or "to" in request.query_params:
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


async def _message_or_404(request: Request, message_id: int) -> StoredMessage:
    message = await sandbox_of(request).store.call(lambda tx: tx.get(StoredMessage, str(message_id)))
    if message is None:
        raise HTTPException(404, "Message introuvable")
    return message


async def _source_or_404(request: Request, message_id: int) -> bytes:
    source = await sandbox_of(request).store.call(lambda tx: tx.get(MessageSource, str(message_id)))
    if source is None:
        raise HTTPException(404, "Message introuvable")
    return source.raw


@router.get("", name="mail_index", response_model=None)
async def mailbox_page(request: Request, to: str | None = None) -> Response:
    sandbox = sandbox_of(request)
    found = await sandbox.store.call(lambda tx: messages(tx, to))
    if _wants_json(request):
        return JSONResponse([m.as_json() for m in found])
    response: HTMLResponse = sandbox.page(request, "mail/index.html", {"messages": found, "to": to})
    return response


@router.delete("", name="mail_clear")
async def clear_mailbox(request: Request) -> JSONResponse:
    await sandbox_of(request).store.call(clear)
    return JSONResponse({"status": "cleared"})


@router.post("/clear", name="mail_clear_form")
async def clear_mailbox_form(request: Request) -> Response:
    """Browsers cannot send DELETE from a plain form: the page's button comes here."""
    await sandbox_of(request).store.call(clear)
    return Response(status_code=303, headers={"Location": str(request.url_for("mail_index"))})


@router.get("/{message_id}", name="mail_message", response_model=None)
async def message_page(request: Request, message_id: int) -> Response:
    message = await _message_or_404(request, message_id)
    if _wants_json(request):
        return JSONResponse(message.as_json())
    return sandbox_of(request).page(request, "mail/message.html", {"message": message})


@router.get("/{message_id}/raw", name="mail_raw")
async def message_source(request: Request, message_id: int) -> Response:
    return Response(await _source_or_404(request, message_id), media_type="text/plain; charset=utf-8")


@router.get("/{message_id}/attachments/{number}", name="mail_attachment")
async def attachment(request: Request, message_id: int, number: int) -> Response:
    raw = await _source_or_404(request, message_id)
    found = await asyncio.to_thread(lambda: attachments_of(_parse(raw)))
    if not 0 <= number < len(found):
        raise HTTPException(404, "Pièce jointe introuvable")
    filename, content_type, content = found[number]
    # An ASCII fallback plus RFC 6266's filename* so that "reçu n°12.pdf" keeps its name.
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
    return Response(content, media_type=content_type, headers={"Content-Disposition": disposition})
