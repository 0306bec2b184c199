"""The cash payment code e-mail: the code, the amount, the deadline and how to pay at Tashilat."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from temporalio import activity

from activities.notify import _templates, send
from portnet.db import session_scope
from portnet.localtime import to_local
from portnet.models import Payment
from portnet.money import format_fr, to_money
from portnet.settings import get_settings
from workflows.types import CodeEmailInput


def compose_code_email(inp: CodeEmailInput) -> EmailMessage:
    settings = get_settings()
    with session_scope() as session:
        payment = session.get(Payment, inp.payment_id)
        invoices = payment.invoice_numbers.replace(",", ", ") if payment is not None else ""
    deadline = to_local(datetime.fromisoformat(inp.expires_at)).strftime("%d/%m/%Y à %H:%M")
    context = {
        "first_name": inp.first_name,
        "last_name": inp.last_name,
        "code": inp.code,
        "payment_id": inp.payment_id,
        "invoices": invoices,
        "amount": format_fr(to_money(inp.amount)),
        "deadline": deadline,
        "url": f"{settings.public_base_url.rstrip('/')}/paiements/{inp.payment_id}",
    }
    msg = EmailMessage()
    msg["Subject"] = f"PortNet - Votre code de paiement Amanpay {inp.code} ({context['amount']})"
    msg["From"] = settings.mail_from
    msg["To"] = inp.to
    msg["Date"] = format_datetime(datetime.now().astimezone())
    msg["Message-ID"] = make_msgid(idstring=f"amanpay-code-{inp.payment_id}", domain="portnet.ma")
    msg.set_content(_templates.get_template("amanpay_code.txt").render(**context))
    msg.add_alternative(_templates.get_template("amanpay_code.html").render(**context), subtype="html")
    return msg


@activity.defn
async def send_code_email(inp: CodeEmailInput) -> None:
    await send(compose_code_email(inp))
