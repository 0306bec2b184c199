"""E-mail to payers over SMTP (aiosmtplib).

The message is composed from the ledger at send time, so a retry sends the same content; its
Message-ID is derived from the payment, so a mail server or a reader can spot a duplicate.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlmodel import col, select
from temporalio import activity

from portnet.db import session_scope
from portnet.localtime import to_local
from portnet.models import Company, Document, Emitter, Invoice, Payment, PaymentInvoice
from portnet.money import format_fr
from portnet.settings import get_settings
from portnet.statuses import Channel
from workflows.types import EmailInput

_templates = Environment(
    loader=PackageLoader("activities", "mail_templates"), autoescape=select_autoescape(["html"])
)


def compose_payment_confirmation(payment_id: str, to: str) -> EmailMessage:
    settings = get_settings()
    with session_scope() as session:
        payment = session.get(Payment, payment_id)
        assert payment is not None and payment.paid_at is not None
        company = session.get(Company, payment.company_id)
        rows = session.exec(
            select(Invoice, Emitter, PaymentInvoice)
            .join(Emitter, col(Emitter.id) == Invoice.emitter_id)
            .join(PaymentInvoice, col(PaymentInvoice.invoice_id) == Invoice.id)
            .where(PaymentInvoice.payment_id == payment_id)
            .order_by(col(Invoice.number))
        ).all()
        receipt = session.exec(
            select(Document).where(Document.payment_id == payment_id, Document.kind == "receipt")
        ).first()
    context = {
        "payment": payment,
        "company": company,
        "channel": Channel(payment.channel).label,
        "invoices": [
            {"number": inv.number, "emitter": em.name, "amount": format_fr(pi.amount_ttc)}
            for inv, em, pi in rows
        ],
        "amount": format_fr(payment.amount),
        "paid_at": to_local(payment.paid_at).strftime("%d/%m/%Y %H:%M"),
        "url": f"{settings.public_base_url.rstrip('/')}/paiements/{payment.id}",
    }
    msg = EmailMessage()
    msg["Subject"] = (
        f"PortNet - Paiement confirmé {context['amount']} ({payment.invoice_numbers.replace(',', ', ')})"
    )
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Date"] = format_datetime(payment.paid_at)
    msg["Message-ID"] = make_msgid(idstring=f"payment-{payment.id}", domain="portnet.ma")
    msg.set_content(_templates.get_template("payment_confirmed.txt").render(**context))
    msg.add_alternative(_templates.get_template("payment_confirmed.html").render(**context), subtype="html")
    if receipt is not None and receipt.content:
        msg.add_attachment(receipt.content, maintype="application", subtype="pdf", filename=receipt.name)
    return msg


async def send(message: EmailMessage) -> None:
    settings = get_settings()
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username or None,
        password=settings.smtp_password or None,
        start_tls=settings.smtp_starttls,
        timeout=20,
    )


@activity.defn
async def send_payment_email(inp: EmailInput) -> None:
    message = compose_payment_confirmation(inp.payment_id, inp.to)
    await send(message)
