"""CMI's hosted payment page (3D_PAY_HOSTING) as the payer's browser sees it, and its scripted twin.

The merchant's auto-submitted form opens a session (``/fim/est3Dgate``); the payer types a card
(``/fim/pay``), passes 3-D Secure if the card asks for it (``/fim/3ds``) or cancels; the bank calls
the merchant back, then sends the browser to ``okUrl``/``failUrl`` with the same signed fields.
``/card-payments`` does what the page does, for tests and scripts. Card numbers are only typed
here, as with the real gateway, which keeps them off our servers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from sandbox.cmi_card.orders import (
    Attempt,
    Order,
    PendingThreeDS,
    Refusal,
    now_in_morocco,
    record_attempt,
    usable_order,
)
from sandbox.cmi_card.rules import (
    TEST_CARDS,
    Decision,
    authorize,
    card_input_errors,
    get_field,
    mask_pan,
    needs_three_d_secure,
    normalize_pan,
    three_d_secure_decision,
    validate_request,
)
from sandbox.context import Sandbox, sandbox_of
from sandbox.store import Tx

router = APIRouter()


def _error_page(request: Request, title: str, errors: list[str], status_code: int) -> HTMLResponse:
    return sandbox_of(request).page(
        request, "cmi/error.html", {"title": title, "errors": errors}, status_code
    )


# CMI's hosted page speaks the language the merchant's request names (its `lang` field: fr, ar, en).
CARD_PAGE_TEXT = {
    "fr": {
        "title": "Paiement de la commande",
        "heading": "Paiement par carte bancaire",
        "merchant": "Marchand",
        "order": "Numéro de commande",
        "customer": "Client",
        "amount": "Montant",
        "pan": "Numéro de carte",
        "expiry": "Date d'expiration (MM/AA)",
        "cvv": "Cryptogramme (CVV)",
        "cancel": "Annuler",
        "pay": "Payer",
    },
    "ar": {
        "title": "أداء الطلب",
        "heading": "الأداء بالبطاقة البنكية",
        "merchant": "التاجر",
        "order": "رقم الطلب",
        "customer": "الزبون",
        "amount": "المبلغ",
        "pan": "رقم البطاقة",
        "expiry": "تاريخ انتهاء الصلاحية (MM/AA)",
        "cvv": "رمز التحقق (CVV)",
        "cancel": "إلغاء",
        "pay": "أداء",
    },
    "en": {
        "title": "Payment of order",
        "heading": "Bank card payment",
        "merchant": "Merchant",
        "order": "Order number",
        "customer": "Customer",
        "amount": "Amount",
        "pan": "Card number",
        "expiry": "Expiry date (MM/YY)",
        "cvv": "Security code (CVV)",
        "cancel": "Cancel",
        "pay": "Pay",
    },
}


def _card_page(
    request: Request, order: Order, errors: list[str] | None = None, status_code: int = 200
) -> HTMLResponse:
    sandbox = sandbox_of(request)
    remaining = (order.expires_at - now_in_morocco(sandbox)).total_seconds()
    language = (get_field(order.fields, "lang") or "fr").strip().lower()
    language = language if language in CARD_PAGE_TEXT else "fr"
    context = {
        "page_lang": language,
        "text": CARD_PAGE_TEXT[language],
        "order": order,
        "fields": order.fields,
        "amount": get_field(order.fields, "amount"),
        "customer": get_field(order.fields, "BillToName") or "",
        "merchant_id": get_field(order.fields, "clientid"),
        "errors": errors or [],
        "test_cards": TEST_CARDS,
        "remaining_minutes": max(0, int(remaining // 60)),
    }
    return sandbox.page(request, "cmi/card.html", context, status_code)


def _redirect_page(request: Request, order: Order, attempt: Attempt) -> HTMLResponse:
    # AutoRedirect=false asks CMI to leave the result on screen until the payer clicks.
    auto_redirect = (get_field(order.fields, "AutoRedirect") or "true").strip().lower() != "false"
    context = {"attempt": attempt, "auto_redirect": auto_redirect}
    return sandbox_of(request).page(request, "cmi/redirect.html", context)


async def _pay(
    sandbox: Sandbox,
    oid: str,
    pan: str,
    decision: Decision,
    wait_for_retries: bool = False,
    answers_lost: bool = False,
) -> tuple[Order, Attempt]:
    """Records the transaction, then calls the merchant back once (the rest in the background)."""
    attempt, delivery = await sandbox.store.call(
        lambda tx: record_attempt(sandbox, tx, oid, pan, decision, answers_lost)
    )
    await sandbox.outbox.dispatch(delivery.id, inline_tries=1, wait=wait_for_retries)
    order = await sandbox.store.call(lambda tx: tx.get(Order, oid))
    assert order is not None
    return order, order.attempt(attempt.trans_id) or attempt


@router.get("/", response_class=HTMLResponse, name="cmi_index")
async def transactions_page(request: Request) -> HTMLResponse:
    sandbox = sandbox_of(request)
    orders = await sandbox.store.call(lambda tx: tx.all(Order))
    orders.sort(key=lambda o: o.created_at, reverse=True)
    context = {"orders": orders, "now": now_in_morocco(sandbox)}
    return sandbox.page(request, "cmi/index.html", context)


@router.post("/fim/est3Dgate", response_class=HTMLResponse, name="cmi_gate")
async def gateway(request: Request) -> HTMLResponse:
    sandbox = sandbox_of(request)
    form = await request.form()
    fields: dict[str, str] = {}
    errors: list[str] = []
    seen: set[str] = set()
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            errors.append(f"Le champ « {name} » ne peut pas être un fichier.")
            continue
        if name.lower() in seen:
            errors.append(f"Le champ « {name} » est présent plusieurs fois.")
        seen.add(name.lower())
        fields[name] = value
    errors += validate_request(fields, sandbox.settings)
    if errors:
        return _error_page(request, "Requête de paiement refusée", errors, 400)
    oid = (get_field(fields, "oid") or "").strip()
    timeout = get_field(fields, "sessionTimeout")

    def open_session(tx: Tx) -> Order | None:
        existing = tx.get(Order, oid)
        if existing is not None and existing.approved_attempt is not None:
            return None
        order = Order(
            oid=oid,
            fields=fields,
            created_at=now_in_morocco(sandbox),
            timeout_seconds=int(timeout) if timeout else sandbox.settings.cmi_session_timeout_seconds,
            # A new form for the same order opens a new session but keeps the earlier declined attempts.
            attempts=existing.attempts if existing is not None else [],
        )
        tx.put(order)
        return order

    order = await sandbox.store.call(open_session)
    if order is None:
        return _error_page(request, "Commande déjà payée", ["Cette commande a déjà été réglée."], 409)
    return _card_page(request, order)


@router.post("/fim/pay", response_class=HTMLResponse, name="cmi_pay")
async def pay(request: Request) -> HTMLResponse:
    sandbox = sandbox_of(request)
    form = await request.form()
    oid, pan, expiry, cvv = (str(form.get(k) or "") for k in ("oid", "pan", "expiry", "cvv"))
    try:
        order = await sandbox.store.call(lambda tx: usable_order(tx, oid, now_in_morocco(sandbox)))
        errors = card_input_errors(pan, expiry, cvv)
        if errors:
            return _card_page(request, order, errors, 400)
        decision = authorize(pan, expiry, cvv, now_in_morocco(sandbox))
        if needs_three_d_secure(pan):

            def ask_for_code(tx: Tx) -> Order:
                current = usable_order(tx, oid, now_in_morocco(sandbox))
                current.pending_3ds = PendingThreeDS(pan=normalize_pan(pan), issuer_answer=decision)
                tx.put(current)
                return current

            order = await sandbox.store.call(ask_for_code)
            context = {"order": order, "masked_pan": mask_pan(pan), "error": None}
            return sandbox.page(request, "cmi/three_ds.html", context)
        order, attempt = await _pay(sandbox, oid, pan, decision)
    except Refusal as refusal:
        return _error_page(request, refusal.title, [refusal.reason], refusal.status)
    return _redirect_page(request, order, attempt)


@router.post("/fim/3ds", response_class=HTMLResponse, name="cmi_3ds")
async def three_d_secure(request: Request) -> HTMLResponse:
    sandbox = sandbox_of(request)
    form = await request.form()
    oid, code = str(form.get("oid") or ""), str(form.get("code") or "")
    try:
        order = await sandbox.store.call(lambda tx: usable_order(tx, oid, now_in_morocco(sandbox)))
        pending = order.pending_3ds
        if pending is None:
            return _error_page(
                request, "Authentification impossible", ["Aucune authentification en cours."], 400
            )
        decision = three_d_secure_decision(code, pending.issuer_answer)
        order, attempt = await _pay(sandbox, oid, pending.pan, decision)
    except Refusal as refusal:
        return _error_page(request, refusal.title, [refusal.reason], refusal.status)
    return _redirect_page(request, order, attempt)


@router.get("/fim/cancel", name="cmi_cancel", response_model=None)
async def cancel(request: Request, oid: str = "") -> Response:
    def cancel_session(tx: Tx) -> Order | None:
        order = tx.get(Order, oid)
        if order is not None and order.approved_attempt is None:
            order.cancelled = True
            order.pending_3ds = None
            tx.put(order)
        return order

    order = await sandbox_of(request).store.call(cancel_session)
    if order is None:
        return _error_page(request, "Commande inconnue", [f"Aucune session de paiement pour « {oid} »."], 404)
    shop_url = get_field(order.fields, "shopurl") or get_field(order.fields, "failUrl")
    if shop_url:
        return RedirectResponse(shop_url, status_code=303)
    return _error_page(request, "Paiement annulé", ["Vous pouvez fermer cette page."], 200)


# --- scripted payments, for tests and demos ---------------------------------------------------


class CardPayment(BaseModel):
    oid: str
    pan: str
    expiry: str
    cvv: str
    three_ds_code: str | None = None
    # By default only the first callback is awaited, exactly like the card page.
    wait_for_retries: bool = False
    # Every answer of the merchant to the callback reaches the bank too late (after its 10 s
    # timeout): the bank holds an authorisation only, which the merchant must capture (PostAuth).
    answers_lost: bool = False


@router.post("/card-payments", name="cmi_card_payments")
async def card_payment(request: Request, payment: CardPayment) -> JSONResponse:
    sandbox = sandbox_of(request)
    try:
        await sandbox.store.call(lambda tx: usable_order(tx, payment.oid, now_in_morocco(sandbox)))
    except Refusal as refusal:
        detail = (
            refusal.title
            if refusal.status != 404
            else f"unknown oid {payment.oid!r}: post the payment form first"
        )
        return JSONResponse({"detail": detail}, refusal.status)
    errors = card_input_errors(payment.pan, payment.expiry, payment.cvv)
    if errors:
        return JSONResponse({"detail": errors}, 422)
    decision = authorize(payment.pan, payment.expiry, payment.cvv, now_in_morocco(sandbox))
    if needs_three_d_secure(payment.pan):
        decision = three_d_secure_decision(payment.three_ds_code, decision)
    try:
        _, attempt = await _pay(
            sandbox, payment.oid, payment.pan, decision, payment.wait_for_retries, payment.answers_lost
        )
    except Refusal as refusal:
        return JSONResponse({"detail": refusal.title}, refusal.status)
    return JSONResponse(
        {
            "result": "approved" if attempt.approved else "declined",
            "proc_return_code": decision.proc_return_code,
            "response": decision.response,
            "err_msg": decision.err_msg,
            "md_status": decision.md_status,
            "trans_id": attempt.trans_id,
            "auth_code": attempt.auth_code,
            "callback_answer": attempt.callback_answer,
            "callback_state": attempt.callback_state,
            "captured": attempt.captured,
            "redirect": {"url": attempt.redirect_url, "fields": attempt.callback_fields},
        }
    )


@router.get("/orders/{oid}", name="cmi_order")
async def order_json(request: Request, oid: str) -> JSONResponse:
    """What the bank knows about an order, for tests and for people debugging a callback."""
    sandbox = sandbox_of(request)
    order = await sandbox.store.call(lambda tx: tx.get(Order, oid))
    if order is None:
        return JSONResponse({"detail": f"unknown oid {oid!r}"}, 404)
    body: dict[str, Any] = {
        "oid": order.oid,
        "fields": order.fields,
        "created_at": order.created_at.isoformat(),
        "expires_at": order.expires_at.isoformat(),
        "status": order.status_label(now_in_morocco(sandbox)),
        "cancelled": order.cancelled,
        "attempts": [a.as_json() for a in order.attempts],
    }
    return JSONResponse(body)
