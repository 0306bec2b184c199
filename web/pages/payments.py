"""Settling invoices: the confirmation screen, the start of an attempt, its status page, CMI's returns.

The portal writes no payment state. It checks the selection to answer clearly, lets
``web.payments.start_payment`` start the workflow, and afterwards only reads the workflow (status
page) or signals it (cancel). What differs by channel (the
choices, the channel's own fields and screen, its part of the status page, its browser returns) is
its web part's, in web/channels/.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from portnet.i18n import N_
from portnet.models import Company, Emitter, Invoice, Payment, PaymentInvoice, User
from portnet.money import total
from portnet.queries import invoices_for_user
from portnet.statuses import (
    ENABLED_CHANNELS,
    PAYABLE_STATUSES,
    Channel,
    InvoiceStatus,
    PaymentMethod,
    PaymentStatus,
)
from web import idempotency, receipt_wait
from web.attempts import PAYMENT_ID_IN_URL, UNAVAILABLE, PaymentRefused, payment_for_user, read_view
from web.channels import CHOICES, chosen_web_channel, web_channel
from web.channels.base import sandbox_pages
from web.deps import DB, AppSettings, company_scope
from web.locale import request_language
from web.pages.guards import CheckedForm, PageUser, form_ids, form_str, is_client
from web.pages.rendering import redirect, render
from web.payments import MAX_INVOICES, request_cancel, start_payment
from workflows.types import PaymentView

router = APIRouter()
log = logging.getLogger("portnet.web.pages")

# While the workflow is expected to move on its own within seconds, the status page follows it: portal.js
# waits on the API's long-poll (web/status_watch.py) and reloads once the status changed; without
# JavaScript the page reloads itself every 3 s.
MOVING = {PaymentStatus.STARTED.value, PaymentStatus.AWAITING_CONFIRMATION.value}

Row = tuple[Invoice, Emitter, Company]


@dataclass
class ChannelChoice:
    channel: Channel
    label: str
    enabled: bool
    value: str = ""  # what the form sends: the channel's value, or a platform's (``amanpay``)
    name: str = ""  # "Payer avec …"


@dataclass
class Platform:
    name: str
    choices: list[ChannelChoice] = field(default_factory=list)


def allowed_methods(rows: list[Row]) -> list[PaymentMethod]:
    """The methods every selected invoice accepts: one attempt pays all of them through one channel."""
    common: set[str] | None = None
    for inv, _, _ in rows:
        common = set(inv.methods) if common is None else common & set(inv.methods)
    return [m for m in PaymentMethod if m.value in (common or set())]


def platforms_for(methods: list[PaymentMethod]) -> list[Platform]:
    """The channels' choices grouped as the guide groups them ("Plateformes de paiement"), in its order."""
    platforms: dict[str, Platform] = {}
    for choice in CHOICES:
        if choice.channel.method in methods:
            platform = platforms.setdefault(choice.platform, Platform(choice.platform))
            platform.choices.append(
                ChannelChoice(
                    choice.channel,
                    choice.label,
                    choice.channel in ENABLED_CHANNELS,
                    choice.form_value,
                    choice.button_name,
                )
            )
    return list(platforms.values())


def selection_problem(user: User, ids: list[int], rows: list[Row]) -> tuple[int, str] | None:
    """What stops this selection from being settled, as (status code, French sentence)."""
    if not is_client(user):
        return 403, N_("Seul un client peut régler ses factures.")
    if not ids:
        return 422, N_("Veuillez sélectionner au moins une facture à régler.")
    if len(ids) > MAX_INVOICES:
        return 422, f"Au plus {MAX_INVOICES} factures par règlement."
    if len(rows) != len(ids):
        return 404, (
            N_(
                "Facture introuvable\u00a0: la sélection contient une facture qui n'existe pas "
                "ou ne vous appartient pas."
            )
        )
    payable = {s.value for s in PAYABLE_STATUSES}
    blocked = [inv for inv, _, _ in rows if inv.status not in payable]
    if blocked:
        listed = ", ".join(f"{inv.number} ({InvoiceStatus(inv.status).label})" for inv in blocked)
        return 409, f"Facture(s) non réglable(s): {listed}."
    if not allowed_methods(rows):
        return 422, (
            N_(
                "Les factures sélectionnées n'ont aucun moyen de paiement en commun\u00a0: "
                "réglez-les séparément."
            )
        )
    return None


def _rows(db: DB, user: User, ids: list[int]) -> list[Row]:
    return invoices_for_user(db, ids[: MAX_INVOICES + 1], company_scope(user)) if ids else []


def confirmation_page(
    request: Request,
    db: DB,
    user: User,
    settings: AppSettings,
    rows: list[Row],
    *,
    error: str | None = None,
    status_code: int = 200,
    payer: dict[str, str] | None = None,
    channel: str | None = None,
    payable: bool = True,
) -> Response:
    company = rows[0][2] if rows else (db.get(Company, user.company_id) if user.company_id else None)
    methods = allowed_methods(rows)
    platforms = platforms_for(methods)
    enabled = [c.value for p in platforms for c in p.choices if c.enabled]
    chosen = channel if channel in enabled else (enabled[0] if enabled else None)
    payer = payer or {
        "name": user.full_name or (company.name if company else ""),
        "email": user.email or (company.email if company and company.email else ""),
        "phone": "",
    }
    emitters = list(dict.fromkeys(em.name for _, em, _ in rows))
    offered = [chosen_web_channel(c.value) for p in platforms for c in p.choices if c.enabled]
    checkout_parts = list(dict.fromkeys(w.checkout_template for w in offered if w and w.checkout_template))
    return render(
        request,
        "payments/confirm.html",
        {
            "rows": rows,
            "company": company,
            "emitters": ", ".join(emitters),
            "total_ht": total(inv.amount_ht for inv, _, _ in rows),
            "total_tva": total(inv.amount_tva for inv, _, _ in rows),
            "total_ttc": total(inv.amount_ttc for inv, _, _ in rows),
            "methods": methods,
            "platforms": platforms,
            "chosen": chosen,
            "payer": payer,
            "error": error,
            # The choices are shown whenever the selection itself is fine; paying needs an enabled one.
            "offer": payable and bool(rows) and bool(platforms),
            "can_submit": payable and bool(rows) and bool(enabled),
            "checkout_parts": checkout_parts,
            # One per rendering: submitting this form twice (a double click, a retry after a
            # timeout) starts one attempt, and the second submit lands on its page.
            "idempotency_key": secrets.token_urlsafe(18),
        },
        status_code=status_code,
        settings=settings,
    )


@router.post("/paiements/confirmation")
def confirm(request: Request, db: DB, user: PageUser, form: CheckedForm, settings: AppSettings) -> Response:
    ids = form_ids(form)
    rows = _rows(db, user, ids)
    problem = selection_problem(user, ids, rows)
    if problem is not None:
        return redirect("/factures", problem[1], "error", settings)
    return confirmation_page(request, db, user, settings, rows)


@router.post("/paiements")
async def start(
    request: Request, db: DB, user: PageUser, form: CheckedForm, settings: AppSettings
) -> Response:
    ids = form_ids(form)
    channel = form_str(form, "channel", 40)
    payer = {
        "name": form_str(form, "payer_name", 120),
        "email": form_str(form, "payer_email", 254),
        "phone": form_str(form, "payer_phone", 30),
    }
    key = form_str(form, "idempotency_key", 64)
    if key and user.id is not None and idempotency.KEY_FORMAT.fullmatch(key):
        earlier = await run_in_threadpool(idempotency.attempt_begun, user.id, key)
        if earlier is not None:  # the form was submitted already: its attempt's page
            return redirect(f"/paiements/{quote(earlier)}")
    rows = await run_in_threadpool(_rows, db, user, ids)
    problem = selection_problem(user, ids, rows)
    if problem is not None and not rows:
        return redirect("/factures", problem[1], "error", settings)

    async def again(message: str, status_code: int) -> Response:
        return await run_in_threadpool(
            confirmation_page,
            request,
            db,
            user,
            settings,
            rows,
            error=message,
            status_code=status_code,
            payer=payer,
            channel=channel,
            payable=problem is None and status_code != 409,
        )

    if problem is not None:
        return await again(problem[1], problem[0])
    web = chosen_web_channel(channel)
    order_id, declaration = None, {}
    if web is not None:
        if web.screen is not None and web.shows_screen(form):
            return web.screen(request, settings, rows, ids, channel, payer, form=form)
        payer, order_id, declaration = (
            web.form_payer(form, payer),
            web.order_id(form),
            web.form_declaration(form),
        )
    if order_id is not None:
        key = ""  # the Amanpay screen's order number already makes its submit idempotent
    if key and user.id is not None:
        try:
            digest = idempotency.request_digest(
                {"invoice_ids": ids, "channel": channel, "payer": payer, "declaration": declaration}
            )
            begun = await run_in_threadpool(idempotency.begin, user.id, idempotency.checked_key(key), digest)
        except idempotency.KeyRefused as bad:
            return await again(bad.message, 422)
        if isinstance(begun, idempotency.Replay):
            if begun.status_code == 201 and isinstance(begun.body.get("id"), str):
                return redirect(f"/paiements/{quote(begun.body['id'])}")
            return await again(str(begun.body.get("detail", "")), begun.status_code)
        order_id = begun.payment_id
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        return await again(UNAVAILABLE, 503)
    try:
        view = await start_payment(
            client,
            db,
            settings,
            user,
            ids,
            channel,
            payer,
            declaration,
            payment_id=order_id,
            idempotent=bool(key),
            lang=request_language(request, user),
        )
    except PaymentRefused as refused:
        if key and user.id is not None and refused.status_code != 503:
            answer = {"detail": refused.message, "code": refused.code}
            await run_in_threadpool(idempotency.finish, user.id, key, refused.status_code, answer)
        if web is not None and web.screen is not None and refused.status_code != 409:
            return web.screen(
                request, settings, rows, ids, channel, payer, refused.message, refused.status_code
            )
        return await again(refused.message, refused.status_code)
    except (RPCError, WorkflowUpdateFailedError) as exc:
        log.warning("payment start failed for %s: %s", user.username, exc)
        return await again(UNAVAILABLE, 503)
    if key and user.id is not None:
        await run_in_threadpool(idempotency.finish, user.id, key, 201, {"id": view.id})
    action = view.next_action
    if action is not None and action.type == "redirect_form" and action.url:
        return render(
            request,
            "payments/redirect.html",
            {"action": action, "view": view},
            settings=settings,
            form_targets=(action.url,),
        )
    if action is not None and action.type == "redirect" and action.url:
        return redirect(action.url)
    return redirect(f"/paiements/{quote(view.id)}")


def _owned_payment(db: DB, user: User, payment_id: str) -> Payment:
    payment = payment_for_user(db, user, payment_id) if PAYMENT_ID_IN_URL.match(payment_id) else None
    if payment is None:
        raise HTTPException(status_code=404, detail=N_("Paiement introuvable."))
    return payment


def _covered_invoices(db: DB, payment: Payment) -> list[tuple[Invoice, PaymentInvoice]]:
    return list(
        db.exec(
            select(Invoice, PaymentInvoice)
            .join(PaymentInvoice, col(PaymentInvoice.invoice_id) == Invoice.id)
            .where(PaymentInvoice.payment_id == payment.id)
            .order_by(col(Invoice.number))
        ).all()
    )


def _can_cancel(user: User, payment: Payment, view: PaymentView) -> bool:
    return (
        is_client(user)
        and payment.company_id == user.company_id
        and view.status == PaymentStatus.AWAITING_PAYER.value
    )


async def _receipt_part(db: Session, payment: Payment, view: PaymentView) -> dict[str, Any]:
    """The receipt's place on the status page: its link, or, for the moment between the settlement
    and the receipt (web/receipt_wait.py), a short wait and then a note that it is coming."""
    if view.status != PaymentStatus.SUCCEEDED.value:
        return {"receipt_url": None, "receipt_pending": False, "receipt_soon": False}
    soon = receipt_wait.just_paid(payment)
    if not view.receipt_document_id and soon:
        await run_in_threadpool(db.close)  # everything is read: no connection held while waiting
        view.receipt_document_id = await receipt_wait.receipt_issued(payment.id)
    ready = bool(view.receipt_document_id)
    return {
        "receipt_url": f"/api/v1/payments/{quote(payment.id)}/receipt" if ready else None,
        "receipt_pending": not ready,
        "receipt_soon": not ready and soon,
    }


@router.get("/paiements/{payment_id}")
async def status_page(
    request: Request, payment_id: str, db: DB, user: PageUser, settings: AppSettings
) -> Response:
    # The ledger's reads in worker threads: the event loop never waits on the database.
    payment = await run_in_threadpool(_owned_payment, db, user, payment_id)
    client: Client | None = await request.app.state.temporal.get()
    view = await read_view(client, payment, db)
    if PaymentStatus(view.status).is_final and view.status != payment.status:
        payment = await receipt_wait.read_again(payment)
    retour = request.query_params.get("retour")
    action = view.next_action
    awaiting = view.status == PaymentStatus.AWAITING_PAYER.value
    resumable = awaiting and action is not None and action.type == "redirect_form" and bool(action.url)
    resume = action if resumable else None
    refresh = view.status in MOVING or (awaiting and retour == "ok")
    ctx: dict[str, Any] = {
        "payment": payment,
        "view": view,
        "amount": Decimal(view.amount) if view.amount else payment.amount,
        "invoices": await run_in_threadpool(_covered_invoices, db, payment),
        "retour": retour if retour in ("ok", "echec") else None,
        "refresh": refresh,
        "can_cancel": _can_cancel(user, payment, view),
        "resume": resume if is_client(user) else None,
        "ledger_only": client is None or view.from_ledger,
        "sandbox_pages": sandbox_pages(settings),
        "channel_part": None,
    }
    web = web_channel(payment.channel)
    part = await run_in_threadpool(web.status_part, db, settings, payment, view) if web is not None else None
    if part is not None:
        ctx.update(part.context, channel_part=part.template)
    if web is not None and web.waits_for_finance:
        ctx["refresh"] = False  # finance may take days: no self-reloading page
    ctx.update(await _receipt_part(db, payment, view))
    return render(
        request,
        "payments/status.html",
        ctx,
        settings=settings,
        form_targets=(resume.url,) if resume is not None and resume.url else (),
    )


@router.get("/paiements/{payment_id}/annuler")
async def cancel_form(
    request: Request, payment_id: str, db: DB, user: PageUser, settings: AppSettings
) -> Response:
    """CMI's shopurl ("back to the shop"): a GET, so it only asks; the POST below cancels."""
    payment = await run_in_threadpool(_owned_payment, db, user, payment_id)
    client: Client | None = await request.app.state.temporal.get()
    view = await read_view(client, payment, db)
    return render(
        request,
        "payments/cancel.html",
        {
            "payment": payment,
            "view": view,
            "can_cancel": _can_cancel(user, payment, view),
            "amount": Decimal(view.amount) if view.amount else payment.amount,
        },
        settings=settings,
    )


@router.post("/paiements/{payment_id}/annuler")
async def cancel(
    request: Request, payment_id: str, db: DB, user: PageUser, form: CheckedForm, settings: AppSettings
) -> Response:
    payment = await run_in_threadpool(_owned_payment, db, user, payment_id)
    if not is_client(user) or payment.company_id != user.company_id:
        raise HTTPException(
            status_code=403, detail=N_("Seul le client qui a lancé ce paiement peut l'annuler.")
        )
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        raise HTTPException(status_code=503, detail=UNAVAILABLE)
    status_url = f"/paiements/{quote(payment.id)}"
    db.close()  # not held while Temporal answers
    try:
        await request_cancel(client, payment, f"Annulé par {user.username}")
    except PaymentRefused as refused:
        log.info("cancel of %s refused: %s", payment.id, refused.message)
        kind = "warning" if refused.status_code == 409 else "error"
        return redirect(status_url, refused.message, kind, settings)
    return redirect(
        status_url,
        N_(
            "Demande d'annulation envoyée. Les factures redeviennent réglables dès qu'elle est prise "
            "en compte."
        ),
        "info",
        settings,
    )
