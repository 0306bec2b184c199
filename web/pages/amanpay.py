"""Portal pages of the Amanpay sub-channels: the Amanpay choice screen of the guide (order number,
amount, three choices), the SMS code form of PayDirect and its resend, and finance's list of
unapplied payments. The status page shows each channel's next action (templates/payments/_amanpay.html).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from sqlmodel import Session, col, select
from starlette.datastructures import FormData
from temporalio.client import Client
from temporalio.service import RPCError

from portnet.models import Payment, PaymentInvoice, UnappliedPayment, User
from portnet.money import total
from portnet.settings import Settings
from portnet.statuses import Channel
from web.amanpay import ChannelRefused, resend_sms_code, submit_sms_code
from web.deps import DB, AppSettings
from web.pages.guards import CheckedForm, PageUser, form_str, is_client
from web.pages.rendering import redirect, render
from web.payments import new_payment_id, payment_for_user

router = APIRouter()
log = logging.getLogger("portnet.web.amanpay")

AMANPAY_CHANNELS = {Channel.AMANPAY_CODE.value, Channel.AMANPAY_AMANTY.value, Channel.AMANPAY_PAYDIRECT.value}
CHOICES = (
    (Channel.AMANPAY_AMANTY, "Carte Amanty"),
    (Channel.AMANPAY_PAYDIRECT, "PayDirect"),
    (Channel.AMANPAY_CODE, "Code de paiement"),
)
FIELDS = ("last_name", "first_name", "contract_number", "cin", "mandataire", "phone", "email")


def wants_choice_screen(channel: str, form: FormData) -> bool:
    """Coming from the confirmation screen: show Amanpay's own screen before anything starts."""
    return channel in AMANPAY_CHANNELS and not form_str(form, "amanpay_step", 5)


def payer_fields(form: FormData) -> dict[str, str]:
    fields = {name: form_str(form, f"ap_{name}", 120) for name in FIELDS}
    return {k: v for k, v in fields.items() if v}


def order_id_of(form: FormData) -> str | None:
    return form_str(form, "order_id", 20) or None


def choice_page(
    request: Request,
    settings: Settings,
    rows: list[Any],
    ids: list[int],
    channel: str,
    payer: dict[str, str],
    error: str | None = None,
    status_code: int = 200,
    order_id: str | None = None,
) -> Response:
    amount: Decimal = total(inv.amount_ttc for inv, _, _ in rows)
    return render(
        request,
        "payments/amanpay.html",
        {
            "order_id": order_id or new_payment_id(),
            "amount": amount,
            "numbers": [inv.number for inv, _, _ in rows],
            "ids": ids,
            "choices": CHOICES,
            "chosen": channel,
            "payer": {name: "" for name in (*FIELDS, "name")} | {k: v for k, v in payer.items() if v},
            "error": error,
        },
        settings=settings,
        status_code=status_code,
    )


def _owned(db: Session, user: User, payment_id: str) -> Payment:
    payment = payment_for_user(db, user, payment_id)
    if payment is None:
        raise HTTPException(status_code=404, detail="Paiement introuvable.")
    if not is_client(user) or payment.company_id != user.company_id:
        raise HTTPException(
            status_code=403, detail="Seul le client qui a lancé ce paiement peut saisir le code."
        )
    return payment


@router.post("/paiements/{payment_id}/code-sms")
async def sms_code(
    request: Request, payment_id: str, db: DB, user: PageUser, form: CheckedForm, settings: AppSettings
) -> Response:
    payment = _owned(db, user, payment_id)
    client: Client | None = await request.app.state.temporal.get()
    status_url = f"/paiements/{quote(payment.id)}"
    if client is None:
        return redirect(status_url, "Service momentanément indisponible, réessayez.", "error", settings)
    try:
        await submit_sms_code(client, settings, payment.workflow_id, payment.id, form_str(form, "code", 20))
    except ChannelRefused as refused:
        return redirect(status_url, refused.message, "error", settings)
    except RPCError:
        return redirect(status_url, "Service momentanément indisponible, réessayez.", "error", settings)
    return redirect(status_url, "Code accepté : la banque a autorisé le paiement.", "success", settings)


@router.post("/paiements/{payment_id}/code-sms/renvoyer")
async def sms_resend(
    request: Request, payment_id: str, db: DB, user: PageUser, form: CheckedForm, settings: AppSettings
) -> Response:
    payment = _owned(db, user, payment_id)
    client: Client | None = await request.app.state.temporal.get()
    status_url = f"/paiements/{quote(payment.id)}"
    if client is None:
        return redirect(status_url, "Service momentanément indisponible, réessayez.", "error", settings)
    try:
        await resend_sms_code(client, payment.workflow_id)
    except ChannelRefused as refused:
        return redirect(status_url, refused.message, "warning", settings)
    return redirect(status_url, "Un nouveau code vous a été envoyé par SMS.", "info", settings)


def unapplied_for_invoice(db: Session, invoice_id: int) -> list[UnappliedPayment]:
    return list(
        db.exec(
            select(UnappliedPayment)
            .join(PaymentInvoice, col(PaymentInvoice.payment_id) == UnappliedPayment.payment_id)
            .where(PaymentInvoice.invoice_id == invoice_id)
            .order_by(col(UnappliedPayment.received_at))
        ).all()
    )


@router.get("/finance/encaissements-non-affectes")
def unapplied_list() -> Response:
    """The first address of the list; finance's back-office page (apply, refund) is the one."""
    return RedirectResponse("/finance/encaissements", status_code=301)
