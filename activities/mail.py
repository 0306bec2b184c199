"""Every e-mail we send, over SMTP (aiosmtplib): the payment confirmation with its receipt, the cash
payment code, the Fatourati reference and its reminder, and finance's alert for an unconfirmed cheque
or transfer.

A message is composed from the ledger at send time, so a retry sends the same content. Each mail
has a key (its kind and payment): once the SMTP server has taken it, a ``sent_mail`` row says so and
a retried activity (a worker killed after the send, a timeout on the answer) does not send it again.
Its Message-ID is derived from the same key, so that a mail server or a reader can still spot the
one duplicate a crash between the send and the row could leave.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import aiosmtplib
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity

from portnet import i18n, metrics, receipt_codes
from portnet.db import session_scope
from portnet.i18n import N_
from portnet.i18n import gettext as _
from portnet.localtime import to_local
from portnet.models import (
    Company,
    Document,
    Emitter,
    Invoice,
    Payment,
    PaymentChannelData,
    PaymentInvoice,
    SentMail,
    User,
    utcnow,
)
from portnet.money import to_money
from portnet.queries import payment_invoices
from portnet.settings import get_settings
from portnet.statuses import Channel

_templates = Environment(
    loader=PackageLoader("activities", "mail_templates"),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
)
# The payer's language is a context variable (portnet/i18n.py), set around each composition.
_templates.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]


def payer_language(user_id: int | None) -> str:
    """The language the payer chose in their profile; French when they never chose one."""
    if user_id is None:
        return i18n.DEFAULT_LANGUAGE
    with session_scope() as session:
        user = session.get(User, user_id)
        return i18n.normalize(user.language if user else None) or i18n.DEFAULT_LANGUAGE


def _language_context() -> dict[str, str]:
    language = i18n.current_language()
    return {"lang": language, "dir": "rtl" if i18n.is_rtl(language) else "ltr"}


@dataclass
class EmailInput:
    payment_id: str
    to: str
    kind: str  # "payment_confirmed"


@dataclass
class CodeEmailInput:
    payment_id: str
    to: str
    code: str
    amount: str
    expires_at: str
    last_name: str = ""
    first_name: str = ""


@dataclass
class ReferenceEmailInput:
    payment_id: str
    to: str
    kind: str  # "fatourati_reference" | "fatourati_reminder" | "offline_unconfirmed"


async def send(message: EmailMessage) -> None:
    settings = get_settings()
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            start_tls=settings.smtp_starttls,
            timeout=20,
        )
    except Exception:
        metrics.email("failed")  # Temporal retries; the SmtpFailures alert watches the rate
        raise
    metrics.email("sent")


def message_id(key: str) -> str:
    """The same Message-ID for every send of one mail (a retry included)."""
    return f"<{key.replace(':', '.')}@portnet.ma>"


def _already_sent(key: str) -> bool:
    with session_scope() as session:
        return session.get(SentMail, key) is not None


def _mark_sent(key: str, message: EmailMessage) -> None:
    try:
        with session_scope() as session:
            session.add(
                SentMail(key=key, message_id=str(message["Message-ID"]), recipient=str(message["To"]))
            )
    except IntegrityError:
        pass  # sent by an earlier attempt of this activity that lost its answer


async def send_once(key: str, compose: Callable[[], EmailMessage]) -> bool:
    """Sends the mail unless it went out already; False when it had. Ledger work off the event loop."""
    if await asyncio.to_thread(_already_sent, key):
        activity.logger.info("mail %s already sent", key)
        return False
    message = await asyncio.to_thread(compose)
    await send(message)
    await asyncio.to_thread(_mark_sent, key, message)
    return True


# --- the payment confirmation ---------------------------------------------------------------------


def _verification(payment: Payment, public_base_url: str, secret_key: str) -> dict[str, str | None]:
    """The receipt's verification link and code, when the ledger has the receipt's code on record.

    Derived again here (portnet/receipt_codes.py); printed only if it is the one recorded when the
    receipt was issued, so the mail never shows a code the page would not know.
    """
    code = receipt_codes.receipt_code(payment.id, secret_key)
    if payment.receipt_code_hash != receipt_codes.code_hash(code):
        return dict.fromkeys(("verification_url", "verification_code", "verification_page", "qr_cid"))
    return {
        "verification_url": receipt_codes.verification_url(public_base_url, code),
        "verification_code": receipt_codes.format_code(code),
        "verification_page": receipt_codes.verification_page(public_base_url),
        "qr_cid": f"verification.{payment.id}@portnet.ma",
    }


def compose_payment_confirmation(payment_id: str, to: str) -> EmailMessage:
    """Read in one transaction (the payer's language with the rest), composed in that language."""
    with session_scope() as session:
        payment = session.get(Payment, payment_id)
        assert payment is not None and payment.paid_at is not None
        payer = session.get(User, payment.user_id) if payment.user_id is not None else None
        company = session.get(Company, payment.company_id)
        rows = payment_invoices(session, payment_id)
        receipt = session.exec(
            select(Document).where(Document.payment_id == payment_id, Document.kind == "receipt")
        ).first()
    language = i18n.normalize(payer.language if payer else None) or i18n.DEFAULT_LANGUAGE
    with i18n.use_locale(language):
        return _compose_payment_confirmation(payment, company, rows, receipt, to)


def _compose_payment_confirmation(
    payment: Payment,
    company: Company | None,
    rows: Sequence[tuple[Invoice, Emitter, PaymentInvoice]],
    receipt: Document | None,
    to: str,
) -> EmailMessage:
    assert payment.paid_at is not None
    settings = get_settings()
    context = {
        **_language_context(),
        "payment": payment,
        "company": company,
        "channel": _(Channel(payment.channel).label),
        "invoices": [
            {"number": inv.number, "emitter": em.name, "amount": i18n.format_amount(pi.amount_ttc)}
            for inv, em, pi in rows
        ],
        "amount": i18n.format_amount(payment.amount),
        "paid_at": i18n.format_moment(to_local(payment.paid_at)),
        "url": f"{settings.public_base_url.rstrip('/')}/paiements/{payment.id}",
        **_verification(payment, settings.public_base_url, settings.secret_key),
    }
    msg = EmailMessage()
    msg["Subject"] = _("PortNet - Paiement confirmé %(amount)s (%(invoices)s)") % {
        "amount": context["amount"],
        "invoices": payment.invoice_numbers.replace(",", ", "),
    }
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Date"] = format_datetime(payment.paid_at)
    msg["Message-ID"] = message_id(f"payment_confirmed:{payment.id}")
    msg.set_content(_templates.get_template("payment_confirmed.txt").render(**context))
    msg.add_alternative(_templates.get_template("payment_confirmed.html").render(**context), subtype="html")
    if context["verification_url"]:
        # The QR code beside the link, as an image of the message itself (no remote image to load).
        html = msg.get_body(("html",))
        assert html is not None
        html.add_related(
            receipt_codes.qr_png(str(context["verification_url"])),
            maintype="image",
            subtype="png",
            cid=f"<{context['qr_cid']}>",
            filename="verification.png",
        )
    if receipt is not None and receipt.content:
        msg.add_attachment(receipt.content, maintype="application", subtype="pdf", filename=receipt.name)
    return msg


@activity.defn
async def send_payment_email(inp: EmailInput) -> None:
    await send_once(
        f"{inp.kind}:{inp.payment_id}", lambda: compose_payment_confirmation(inp.payment_id, inp.to)
    )


# --- Amanpay's cash payment code --------------------------------------------------------------------


def compose_code_email(inp: CodeEmailInput) -> EmailMessage:
    """The code, the amount, the deadline and how to pay at Tashilat."""
    with session_scope() as session:
        payment = session.get(Payment, inp.payment_id)
        user_id = payment.user_id if payment is not None else None
    with i18n.use_locale(payer_language(user_id)):
        return _compose_code_email(inp)


def _compose_code_email(inp: CodeEmailInput) -> EmailMessage:
    settings = get_settings()
    with session_scope() as session:
        payment = session.get(Payment, inp.payment_id)
        invoices = payment.invoice_numbers.replace(",", ", ") if payment is not None else ""
    expires = to_local(datetime.fromisoformat(inp.expires_at))
    deadline = _("%(day)s à %(time)s") % {"day": i18n.format_day(expires), "time": expires.strftime("%H:%M")}
    context = {
        **_language_context(),
        "first_name": inp.first_name,
        "last_name": inp.last_name,
        "code": inp.code,
        "payment_id": inp.payment_id,
        "invoices": invoices,
        "amount": i18n.format_amount(to_money(inp.amount)),
        "deadline": deadline,
        "url": f"{settings.public_base_url.rstrip('/')}/paiements/{inp.payment_id}",
    }
    msg = EmailMessage()
    msg["Subject"] = _("PortNet - Votre code de paiement Amanpay %(code)s (%(amount)s)") % {
        "code": inp.code,
        "amount": context["amount"],
    }
    msg["From"] = settings.mail_from
    msg["To"] = inp.to
    msg["Date"] = format_datetime(datetime.now().astimezone())
    msg["Message-ID"] = message_id(code_mail_key(inp))
    msg.set_content(_templates.get_template("amanpay_code.txt").render(**context))
    msg.add_alternative(_templates.get_template("amanpay_code.html").render(**context), subtype="html")
    return msg


def code_mail_key(inp: CodeEmailInput) -> str:
    """One mail per code (a new code is a new mail); the code itself is never kept."""
    digest = hashlib.sha256(f"{inp.payment_id}:{inp.code}".encode()).hexdigest()[:16]
    return f"amanpay_code:{inp.payment_id}:{digest}"


@activity.defn
async def send_code_email(inp: CodeEmailInput) -> None:
    await send_once(code_mail_key(inp), lambda: compose_code_email(inp))


# --- the Fatourati reference, its reminder, and finance's alert for a cheque or transfer ----------

SUBJECTS = {
    "fatourati_reference": N_("PortNet - Votre référence Fatourati %(reference)s (%(amount)s)"),
    "fatourati_reminder": N_(
        "PortNet - Rappel : votre référence Fatourati %(reference)s expire à %(deadline)s"
    ),
    "offline_unconfirmed": N_("PortNet finance - Règlement %(payment)s non confirmé dans le délai"),
}
FATOURATI_CHANNELS = N_(
    "Utilisez l'un des canaux de paiement autorisés (AttijariNet, BMCE Direct, CIH Online, "
    "Barid Bank Mobile, CAM Online, CDM Banque Direct, SG Maroc Cashnet, CashPlus, "
    "Global Vision Fawatir, CMI Fawatir Cash, DamanePay / DamanCash), sélectionnez le "
    "service ANP puis « PortNet » et communiquez votre référence Fatourati. Passé ce délai, "
    "votre règlement sera refusé."
)


def compose_channel_email(payment_id: str, to: str, kind: str) -> EmailMessage:
    """The payer's mails in the payer's language; finance's alert in French, finance's language."""
    with session_scope() as session:
        payment = session.get(Payment, payment_id)
        user_id = payment.user_id if payment is not None else None
    language = i18n.DEFAULT_LANGUAGE if kind == "offline_unconfirmed" else payer_language(user_id)
    with i18n.use_locale(language):
        return _compose_channel_email(payment_id, to, kind)


def _compose_channel_email(payment_id: str, to: str, kind: str) -> EmailMessage:
    settings = get_settings()
    with session_scope() as session:
        payment = session.get(Payment, payment_id)
        assert payment is not None
        company = session.get(Company, payment.company_id)
        data = session.get(PaymentChannelData, payment_id)
        numbers = payment.invoice_numbers.replace(",", ", ")
    reference = data.partner_reference if data is not None else ""
    deadline = i18n.format_moment(to_local(data.expires_at)) if data and data.expires_at else ""
    amount = i18n.format_amount(payment.amount)
    url = f"{settings.public_base_url.rstrip('/')}/paiements/{payment.id}"
    declaration = json.loads(data.declaration) if data is not None and data.declaration else {}
    if kind == "offline_unconfirmed":
        text = _(
            "Le règlement %(payment)s (%(amount)s, factures %(invoices)s, client %(client)s) déclaré par "
            "%(channel)s (%(declaration)s) n'a pas été confirmé dans le délai. Les factures ont été libérées."
        ) % {
            "payment": payment.id,
            "amount": amount,
            "invoices": numbers,
            "client": company.name if company else "",
            "channel": payment.channel,
            "declaration": ", ".join(f"{k}: {v}" for k, v in declaration.items()),
        } + "\n"
    else:
        intro = (
            _("Voici votre référence Fatourati pour régler vos factures PortNet.")
            if kind == "fatourati_reference"
            else _("Votre référence Fatourati n'est pas encore payée : elle expire le %(deadline)s.")
            % {"deadline": deadline}
        )
        lines = [
            _("Bonjour,"),
            "",
            intro,
            "",
            f"{_('Référence Fatourati')} : {reference}",
            f"{_('Montant')} : {amount}",
            f"{_('Factures')} : {numbers}",
            f"{_('À payer avant le')} : {deadline} {_('(heure du Maroc)')}",
            "",
            _(FATOURATI_CHANNELS),
            "",
            f"{_('Suivre ce paiement')} : {url}",
            "",
            "PORTNET S.A. - HelpDesk 05 20 47 31 00 - http://reclamation.portnet.ma",
        ]
        text = "\n".join(lines) + "\n"
    msg = EmailMessage()
    msg["Subject"] = _(SUBJECTS[kind]) % {
        "reference": reference,
        "amount": amount,
        "deadline": deadline,
        "payment": payment.id,
    }
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Date"] = format_datetime(utcnow().replace(tzinfo=None), usegmt=False)
    msg["Message-ID"] = message_id(f"{kind}:{payment.id}")
    msg.set_content(text)
    return msg


@activity.defn
async def send_channel_email(inp: ReferenceEmailInput) -> None:
    await send_once(
        f"{inp.kind}:{inp.payment_id}", lambda: compose_channel_email(inp.payment_id, inp.to, inp.kind)
    )


ACTIVITIES: list[Callable[..., Any]] = [send_payment_email, send_code_email, send_channel_email]
