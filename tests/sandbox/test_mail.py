"""The SMTP sink receives what aiosmtplib sends (as the platform does) and shows it as JSON and HTML."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib
import httpx

from portnet.settings import Settings
from sandbox.context import Sandbox
from sandbox.mail import MailSink, messages
from sandbox.store import Store
from tests.support.sandbox import assert_french_page

PDF = b"%PDF-1.4\n% fake receipt\n"


def receipt_email(to: str = "finance@transit-atlas.ma") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "PortNet Paiements <paiements@portnet.ma>"
    message["To"] = to
    message["Subject"] = "Reçu de paiement n° 2026-0042"
    message.set_content("Bonjour,\nVotre paiement de 3 600,00 MAD est confirmé.")
    message.add_alternative("<p>Votre paiement de <b>3 600,00 MAD</b> est confirmé.</p>", subtype="html")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="reçu-2026-0042.pdf")
    return message


async def test_sink_receives_and_lists_as_json(
    handle: Sandbox, client: httpx.AsyncClient, settings: Settings
) -> None:
    async with MailSink(settings, handle.store):
        await aiosmtplib.send(receipt_email(), hostname="127.0.0.1", port=settings.sandbox_smtp_port)
        await aiosmtplib.send(
            receipt_email("other@example.ma"), hostname="127.0.0.1", port=settings.sandbox_smtp_port
        )

    [message] = (await client.get("/mail", params={"to": "Finance@Transit-Atlas.ma"})).json()
    assert message["from"] == "PortNet Paiements <paiements@portnet.ma>"
    assert message["to"] == ["finance@transit-atlas.ma"]
    assert message["subject"] == "Reçu de paiement n° 2026-0042"
    assert "3 600,00 MAD" in message["text"]
    assert "<b>3 600,00 MAD</b>" in message["html"]
    assert message["attachments"] == [
        {"filename": "reçu-2026-0042.pdf", "content_type": "application/pdf", "size": len(PDF)}
    ]
    assert message["date"]

    everything = (await client.get("/mail", headers={"Accept": "application/json"})).json()
    assert [m["to"] for m in everything] == [
        ["other@example.ma"],
        ["finance@transit-atlas.ma"],
    ]  # newest first
    assert len((await client.get("/mail", params={"format": "json"})).json()) == 2

    page = await client.get("/mail")
    assert page.headers["content-type"].startswith("text/html")
    assert "Reçu de paiement" in page.text
    detail = await client.get(f"/mail/{message['id']}")
    assert "reçu-2026-0042.pdf" in detail.text and "srcdoc=" in detail.text
    download = await client.get(f"/mail/{message['id']}/attachments/0")
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert "filename*=UTF-8''re%C3%A7u-2026-0042.pdf" in download.headers["content-disposition"]
    assert (await client.get(f"/mail/{message['id']}/attachments/1")).status_code == 404
    assert (await client.get("/mail/999")).status_code == 404

    assert (await client.delete("/mail")).status_code == 200
    assert (await client.get("/mail", params={"format": "json"})).json() == []


async def test_bcc_recipients_are_found_by_envelope(settings: Settings) -> None:
    store = Store(settings.sandbox_database_url)
    sink = MailSink(settings, store)
    async with sink:
        message = receipt_email()
        await aiosmtplib.send(
            message,
            hostname="127.0.0.1",
            port=settings.sandbox_smtp_port,
            recipients=["finance@transit-atlas.ma", "audit@portnet.ma"],
        )
    assert not sink.running
    [stored] = store.run(lambda tx: messages(tx, to="audit@portnet.ma"))
    assert stored.to == ["finance@transit-atlas.ma", "audit@portnet.ma"]
    assert stored.header_to == ["finance@transit-atlas.ma"]
    store.close()


def test_start_and_stop_are_idempotent(settings: Settings) -> None:
    sink = MailSink(settings, Store(settings.sandbox_database_url))
    sink.start()
    sink.start()
    assert sink.running
    sink.stop()
    sink.stop()
    assert not sink.running


async def test_empty_mailbox_page_renders(client: httpx.AsyncClient) -> None:
    assert_french_page(await client.get("/mail"), "Aucun message")


async def test_clear_button(client: httpx.AsyncClient) -> None:
    reply = await client.post("/mail/clear")
    assert reply.status_code == 303
    assert reply.headers["location"].endswith("/sandbox/mail")
