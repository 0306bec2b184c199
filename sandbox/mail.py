"""A development mail sink: an SMTP server that keeps what it receives, and the pages to read it.

The platform sends real SMTP (aiosmtplib) in every environment; in development it points at this
sink, so receipts and notices are checked exactly as they leave, attachments included, without
a mail account. The SMTP server runs in aiosmtpd's own thread, hence the lock on the mailbox.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
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

from portnet.settings import Settings, get_settings

router = APIRouter()


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class StoredMessage:
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
    raw: bytes

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
            "attachments": [
                {"filename": a.filename, "content_type": a.content_type, "size": a.size}
                for a in self.attachments
            ],
        }


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    content = part.get_content()
    # SMTP carries CRLF line ends; readers (and tests) expect Python's "\n".
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


def parse_message(
    message_id: int, raw: bytes, envelope_from: str | None, recipients: list[str]
) -> StoredMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    received_at = datetime.now(UTC)
    try:
        date = parsedate_to_datetime(str(message["Date"])) if message["Date"] else received_at
    except (TypeError, ValueError):
        date = received_at
    attachments: list[Attachment] = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        attachments.append(
            Attachment(
                filename=part.get_filename() or f"piece-jointe-{len(attachments) + 1}",
                content_type=part.get_content_type(),
                content=payload if isinstance(payload, bytes) else b"",
            )
        )
    header_to = [addr for _, addr in getaddresses([str(v) for v in message.get_all("To", [])]) if addr]
    return StoredMessage(
        id=message_id,
        received_at=received_at,
        mail_from=str(message["From"] or envelope_from or ""),
        to=list(recipients) or header_to,
        header_to=header_to,
        subject=str(message["Subject"] or ""),
        date=date,
        text=_body(message, "plain"),
        html=_body(message, "html"),
        attachments=attachments,
        raw=raw,
    )


class Mailbox:
    """Written from the SMTP thread, read from the web event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[StoredMessage] = []
        self._next_id = 1

    def store(self, raw: bytes, envelope_from: str | None, recipients: list[str]) -> StoredMessage:
        with self._lock:
            # Ids are never reused, even after clear(), so an old link cannot show another message.
            message = parse_message(self._next_id, raw, envelope_from, recipients)
            self._next_id += 1
            self._messages.append(message)
            return message

    def messages(self, to: str | None = None) -> list[StoredMessage]:
        """Newest first, optionally only those delivered to ``to``."""
        with self._lock:
            found = list(reversed(self._messages))
        return [m for m in found if to is None or m.addressed_to(to)]

    def get(self, message_id: int) -> StoredMessage | None:
        with self._lock:
            return next((m for m in self._messages if m.id == message_id), None)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        self.mailbox.store(raw, envelope.mail_from, list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class MailSink:
    """The SMTP server on 127.0.0.1:``settings.sandbox_smtp_port``; start()/stop() or ``async with``."""

    def __init__(
        self,
        settings: Settings | None = None,
        mailbox: Mailbox | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        settings = settings or get_settings()
        self.mailbox = mailbox or Mailbox()
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
        controller = Controller(_Handler(self.mailbox), hostname=self.host, port=self.port)
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


def _mailbox(request: Request) -> Mailbox:
    mailbox: Mailbox = request.app.state.mailbox
    return mailbox


def _wants_json(request: Request) -> bool:
    if request.query_params.get("format") == "json" or "to" in request.query_params:
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _message_or_404(request: Request, message_id: int) -> StoredMessage:
    message = _mailbox(request).get(message_id)
    if message is None:
        raise HTTPException(404, "Message introuvable")
    return message


@router.get("/mail", name="mail_index", response_model=None)
async def mailbox_page(request: Request, to: str | None = None) -> Response:
    messages = _mailbox(request).messages(to)
    if _wants_json(request):
        return JSONResponse([m.as_json() for m in messages])
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "mail/index.html", {"messages": messages, "to": to}
    )
    return response


@router.delete("/mail", name="mail_clear")
async def clear_mailbox(request: Request) -> JSONResponse:
    _mailbox(request).clear()
    return JSONResponse({"status": "cleared"})


@router.post("/mail/clear", name="mail_clear_form")
async def clear_mailbox_form(request: Request) -> Response:
    """Browsers cannot send DELETE from a plain form: the page's button comes here."""
    _mailbox(request).clear()
    return Response(status_code=303, headers={"Location": str(request.url_for("mail_index"))})


@router.get("/mail/{message_id}", name="mail_message", response_model=None)
async def message_page(request: Request, message_id: int) -> Response:
    message = _message_or_404(request, message_id)
    if _wants_json(request):
        return JSONResponse(message.as_json())
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "mail/message.html", {"message": message}
    )
    return response


@router.get("/mail/{message_id}/raw", name="mail_raw")
async def message_source(request: Request, message_id: int) -> Response:
    return Response(_message_or_404(request, message_id).raw, media_type="text/plain; charset=utf-8")


@router.get("/mail/{message_id}/attachments/{number}", name="mail_attachment")
async def attachment(request: Request, message_id: int, number: int) -> Response:
    message = _message_or_404(request, message_id)
    if not 0 <= number < len(message.attachments):
        raise HTTPException(404, "Pièce jointe introuvable")
    item = message.attachments[number]
    # An ASCII fallback plus RFC 6266's filename* so that "reçu n°12.pdf" keeps its name.
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in item.filename
    )
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(item.filename, safe='')}"
    return Response(item.content, media_type=item.content_type, headers={"Content-Disposition": disposition})
