"""A mail goes out once even when its activity runs again (worker killed after the send, lost answer)."""

from __future__ import annotations

import uuid
from email.message import EmailMessage

import pytest
from sqlmodel import Session
from temporalio.testing import ActivityEnvironment

from activities import mail
from activities.mail import CodeEmailInput, code_mail_key, message_id, send_once
from portnet.models import SentMail


def composed(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["To"] = to
    msg["Message-ID"] = message_id("test:" + to)
    msg.set_content("Bonjour")
    return msg


async def test_a_retried_send_does_not_send_twice(monkeypatch: pytest.MonkeyPatch, db: Session) -> None:
    sent: list[EmailMessage] = []
    failures = [ConnectionError("SMTP down")]

    async def smtp(message: EmailMessage) -> None:
        if failures:
            raise failures.pop()
        sent.append(message)

    monkeypatch.setattr(mail, "send", smtp)
    key = f"payment_confirmed:PN{uuid.uuid4().hex[:12].upper()}"
    env = ActivityEnvironment()
    with pytest.raises(ConnectionError):
        await env.run(send_once, key, lambda: composed("a@sataa.ma"))
    assert db.get(SentMail, key) is None  # not sent: the retry must send it
    assert await env.run(send_once, key, lambda: composed("a@sataa.ma")) is True
    assert await env.run(send_once, key, lambda: composed("a@sataa.ma")) is False
    assert len(sent) == 1
    row = db.get(SentMail, key)
    assert row is not None and row.recipient == "a@sataa.ma" and row.message_id == sent[0]["Message-ID"]


def test_message_ids_are_derived_from_the_mail_and_codes_never_kept() -> None:
    assert (
        message_id("payment_confirmed:PN1")
        == message_id("payment_confirmed:PN1")
        == "<payment_confirmed.PN1@portnet.ma>"
    )
    first = CodeEmailInput("PN1", "a@sataa.ma", "123456789012", "10.00", "2026-11-30T12:00:00")
    second = CodeEmailInput("PN1", "a@sataa.ma", "999999999999", "10.00", "2026-11-30T12:00:00")
    assert code_mail_key(first) != code_mail_key(second)
    assert "123456789012" not in code_mail_key(first)
