"""Imitations of Amanpay (orders, cash payment codes, Amanty wallet), Tashilat agencies, Banque
Populaire PayDirect and an SMS gateway, reached by us over HTTP only.

Amanpay publishes no API, so the shapes here are ours (see ../shared/partners.md): JSON bodies
signed with HMAC-SHA256 (hex, header ``X-Amanpay-Signature`` / ``X-PayDirect-Signature``) over the
message type's label, a newline and the raw body, with the merchant's key. Requests are checked
field by field (JSON object, our merchant, amount) before their signature; the sandbox signs its
notifications and its successful answers the same way, each with its own label, and sends its
refusals as fixed, unsigned texts. Every value (keys, TTLs, URLs) comes from settings so that
pointing the platform at the real partner is a configuration change.

PayDirect keeps only an HMAC of each SMS code and compares in constant time; the code itself exists
in clear only in the SMS it sends (the phone's inbox, which is the point of an SMS).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from portnet.settings import Settings
from sandbox.runtime import Background, Outbound, log

router = APIRouter()

OTP_LENGTH = 6
OTP_MAX_ATTEMPTS = 3


# The first signed element of each message type: a signature never passes for another type's.
NOTIFICATION = "AMANPAY_NOTIFICATION"
ORDER_CREATE, ORDER_CREATED = "AMANPAY_ORDER_CREATE", "AMANPAY_ORDER_CREATED"
ORDER_CANCEL, ORDER_CANCEL_RESULT = "AMANPAY_ORDER_CANCEL", "AMANPAY_ORDER_CANCEL_RESULT"
ORDER_STATUS, ORDER_STATUS_RESULT = "AMANPAY_ORDER_STATUS", "AMANPAY_ORDER_STATUS_RESULT"
AUTHORIZATION_CREATE, AUTHORIZATION = "PAYDIRECT_AUTHORIZATION_CREATE", "PAYDIRECT_AUTHORIZATION"
OTP_RESEND, OTP_SENT = "PAYDIRECT_OTP_RESEND", "PAYDIRECT_OTP_SENT"
OTP_VERIFY, OTP_VERDICT = "PAYDIRECT_OTP_VERIFY", "PAYDIRECT_OTP_VERDICT"
AMANPAY_HEADER, PAYDIRECT_HEADER = "X-Amanpay-Signature", "X-PayDirect-Signature"


def sign(key: str, label: str, body: bytes) -> str:
    return hmac.new(key.encode(), label.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def signed_reply(body: dict[str, Any], key: str, label: str, header: str, status_code: int = 200) -> Response:
    """A successful answer, signed over exactly the bytes sent."""
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return Response(
        raw, status_code=status_code, media_type="application/json", headers={header: sign(key, label, raw)}
    )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _amount(value: Any) -> str | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        return None
    return f"{amount:.2f}"


@dataclass(frozen=True)
class Wallet:
    login: str
    password: str
    holder: str
    balance: Decimal


@dataclass(frozen=True)
class Contract:
    number: str
    cin: str
    phone: str
    holder: str


# Seeded accounts, documented in README.md.
WALLETS = (
    Wallet("amanty.sataa@demo.ma", "Amanty2026!", "SATAA IMPORT EXPORT", Decimal("250000.00")),
    Wallet("amanty.aska@demo.ma", "Amanty2026!", "ASKA LOGISTIQUE", Decimal("80000.00")),
    Wallet("amanty.petit@demo.ma", "Amanty2026!", "PETIT SOLDE SARL", Decimal("50.00")),
)
CONTRACTS = (
    Contract("PD1002457", "BE123456", "+212600000001", "SATAA IMPORT EXPORT"),
    Contract("PD1003771", "AB654321", "+212600000002", "ASKA LOGISTIQUE"),
)


def normalize_phone(phone: str) -> str:
    digits = "".join(c for c in phone if c.isdigit())
    if digits.startswith("00"):
        digits = digits[2:]
    if digits.startswith("0") and len(digits) == 10:
        digits = "212" + digits[1:]
    return "+" + digits


@dataclass
class Order:
    order_id: str
    amount: str
    method: str  # code | amanty
    notify_url: str
    return_url: str
    customer: dict[str, str]
    created: float
    expires: float | None = None
    code: str | None = None
    status: str = "pending"  # pending | paid | cancelled | expired
    transaction_id: str | None = None
    paid_at: float | None = None
    refusals: int = 0
    deliveries: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Authorization:
    ref: str
    order_id: str
    amount: str
    contract: Contract
    mandataire: str
    otp_mac: str = ""
    otp_expires: float = 0.0
    attempts_left: int = OTP_MAX_ATTEMPTS
    sends: int = 0
    status: str = "otp_sent"  # otp_sent | authorized
    transaction_id: str | None = None
    authorization_code: str | None = None
    # Verdicts by request id: a retried verification is answered again, not counted twice.
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Sms:
    id: int
    to: str
    sender: str
    text: str
    at: str


@dataclass
class AmanpayState:
    settings: Settings
    orders: dict[str, Order] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(default_factory=lambda: {w.login: w.balance for w in WALLETS})
    authorizations: dict[str, Authorization] = field(default_factory=dict)
    by_order: dict[str, str] = field(default_factory=dict)
    sms: list[Sms] = field(default_factory=list)
    otp_pepper: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    notify_max_tries: int = 6
    notify_backoff_seconds: float = 1.0

    def new_code(self) -> str:
        while True:
            digits = f"18{secrets.randbelow(10**10):010d}"
            code = f"{digits[:2]} {digits[2:6]} {digits[6:9]}-{digits[9:]}"
            if code not in self.codes:
                return code

    def otp_mac(self, ref: str, otp: str) -> str:
        return hmac.new(self.otp_pepper, f"{ref}:{otp}".encode(), hashlib.sha256).hexdigest()


def _state(request: Request) -> AmanpayState:
    state: AmanpayState = request.app.state.amanpay
    return state


class Unreadable(Exception):
    """Not a JSON object: refused before any signature is looked at."""


def _json_object(request_body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(request_body)
    except ValueError:
        raise Unreadable from None
    if not isinstance(data, dict):
        raise Unreadable
    return data


def _signature_ok(request_body: bytes, signature: str, key: str, label: str) -> bool:
    return hmac.compare_digest(signature.lower(), sign(key, label, request_body))


def _signed_json(request_body: bytes, signature: str, key: str, label: str) -> dict[str, Any] | None:
    try:
        data = _json_object(request_body)
    except Unreadable:
        return None
    return data if _signature_ok(request_body, signature, key, label) else None


def _refused(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"result": "refused", "reason": reason, "message": message}, status_code=status)


def _normalize_code(code: str) -> str:
    digits = "".join(c for c in code if c.isdigit())
    if len(digits) != 12:
        return code.strip()
    return f"{digits[:2]} {digits[2:6]} {digits[6:9]}-{digits[9:]}"


def _expire(state: AmanpayState, order: Order) -> None:
    if order.status == "pending" and order.expires is not None and time.time() > order.expires:
        order.status = "expired"


# --- notifications to the merchant ------------------------------------------------------------


async def _notify_once(state: AmanpayState, outbound: Outbound, order: Order, event: dict[str, Any]) -> bool:
    body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        AMANPAY_HEADER: sign(state.settings.amanpay_secret_key, NOTIFICATION, body),
    }
    try:
        async with outbound.client() as client:
            reply = await client.post(order.notify_url, content=body, headers=headers)
        ok = 200 <= reply.status_code < 300
        order.deliveries.append(
            {"event": event["status"], "status_code": reply.status_code, "at": _iso(time.time())}
        )
    except Exception as exc:  # the partner keeps going whatever the merchant's server does
        ok = False
        order.deliveries.append(
            {"event": event["status"], "error": type(exc).__name__, "at": _iso(time.time())}
        )
    return ok


def _event(state: AmanpayState, order: Order, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "merchant_id": state.settings.amanpay_merchant_id,
        "order_id": order.order_id,
        "amount": order.amount,
        "method": order.method,
        "status": status,
        "transaction_id": order.transaction_id or "",
        "paid_at": _iso(order.paid_at) if order.paid_at else "",
        "event_id": f"{order.order_id}-{status}-{len(order.deliveries)}-{secrets.token_hex(3)}"
        if status == "refused"
        else f"{order.order_id}-{status}",
        **extra,
    }


async def _deliver(
    state: AmanpayState, outbound: Outbound, order: Order, event: dict[str, Any], delay: float
) -> None:
    if delay > 0:
        await asyncio.sleep(delay)
    for number in range(state.notify_max_tries):
        if await _notify_once(state, outbound, order, event):
            return
        await asyncio.sleep(state.notify_backoff_seconds * 2**number)
    log.warning("Amanpay sandbox: notification %s abandoned", event["event_id"])


async def notify(request: Request, order: Order, event: dict[str, Any], delay: float = 0.0) -> None:
    """First try inline when there is no delay (as the partner does before redirecting); retries behind."""
    state = _state(request)
    outbound: Outbound = request.app.state.outbound
    background: Background = request.app.state.background
    if delay <= 0 and await _notify_once(state, outbound, order, event):
        return
    background.spawn(_deliver(state, outbound, order, event, delay), name=f"amanpay-{event['event_id']}")


# --- Amanpay merchant API ---------------------------------------------------------------------


@router.post("/amanpay/api/orders", name="amanpay_create_order")
async def create_order(request: Request) -> Response:
    state = _state(request)
    raw = await request.body()
    try:
        data = _json_object(raw)
    except Unreadable:
        return _refused(400, "invalid_request", "Corps JSON attendu.")
    if data.get("merchant_id") != state.settings.amanpay_merchant_id:
        return _refused(403, "unknown_merchant", "Marchand inconnu.")
    order_id = str(data.get("order_id", ""))
    amount = _amount(data.get("amount"))
    method = data.get("method")
    if not order_id or amount is None or method not in ("code", "amanty"):
        return _refused(422, "invalid_request", "Commande invalide (order_id, amount, method).")
    if not _signature_ok(
        raw, request.headers.get(AMANPAY_HEADER, ""), state.settings.amanpay_secret_key, ORDER_CREATE
    ):
        return _refused(401, "bad_signature", "Signature invalide.")
    existing = state.orders.get(order_id)
    if existing is None:
        customer = {k: str(v) for k, v in (data.get("customer") or {}).items()}
        order = Order(
            order_id=order_id,
            amount=amount,
            method=str(method),
            notify_url=str(data.get("notify_url", "")),
            return_url=str(data.get("return_url", "")),
            customer=customer,
            created=time.time(),
        )
        if method == "code":
            ttl = int(data.get("ttl_seconds") or state.settings.amanpay_code_ttl_seconds)
            order.expires = order.created + ttl
            order.code = state.new_code()
            state.codes[order.code] = order_id
        state.orders[order_id] = order
    else:
        order = existing
    base = str(request.url_for("amanty_page", order_id=order.order_id))
    body: dict[str, Any] = {"order_id": order.order_id, "status": order.status, "amount": order.amount}
    if order.method == "code":
        body |= {"code": order.code, "expires_at": _iso(order.expires or 0)}
    else:
        body |= {"redirect_url": base}
    return signed_reply(
        body,
        state.settings.amanpay_secret_key,
        ORDER_CREATED,
        AMANPAY_HEADER,
        status_code=201 if existing is None else 200,
    )


@router.post("/amanpay/api/orders/{order_id}/cancel", name="amanpay_cancel_order")
async def cancel_order(request: Request, order_id: str) -> Response:
    state = _state(request)
    data = _signed_json(
        await request.body(),
        request.headers.get(AMANPAY_HEADER, ""),
        state.settings.amanpay_secret_key,
        ORDER_CANCEL,
    )
    if data is None:
        return _refused(401, "bad_signature", "Signature invalide.")
    order = state.orders.get(order_id)
    if order is None:
        return _refused(404, "unknown_order", "Commande inconnue.")
    _expire(state, order)
    if order.status in ("pending", "expired"):
        order.status = "cancelled"
    return signed_reply(
        {"order_id": order_id, "status": order.status},
        state.settings.amanpay_secret_key,
        ORDER_CANCEL_RESULT,
        AMANPAY_HEADER,
    )


@router.get("/amanpay/api/orders/{order_id}", name="amanpay_order_status")
async def order_status(request: Request, order_id: str) -> Response:
    """Status look-up; the signature covers the order id (a GET has no body)."""
    state = _state(request)
    signature = request.headers.get(AMANPAY_HEADER, "")
    if not _signature_ok(order_id.encode(), signature, state.settings.amanpay_secret_key, ORDER_STATUS):
        return _refused(401, "bad_signature", "Signature invalide.")
    order = state.orders.get(order_id)
    if order is None:
        return _refused(404, "unknown_order", "Commande inconnue.")
    _expire(state, order)
    return signed_reply(
        {
            "order_id": order.order_id,
            "status": order.status,
            "amount": order.amount,
            "method": order.method,
            "transaction_id": order.transaction_id,
            "expires_at": _iso(order.expires) if order.expires else None,
        },
        state.settings.amanpay_secret_key,
        ORDER_STATUS_RESULT,
        AMANPAY_HEADER,
    )


@router.get("/amanpay", response_class=HTMLResponse, name="amanpay_index")
async def amanpay_index(request: Request) -> HTMLResponse:
    state = _state(request)
    for order in state.orders.values():
        _expire(state, order)
    orders = sorted(state.orders.values(), key=lambda o: o.created, reverse=True)
    return _page(
        request,
        "amanpay/index.html",
        {"orders": orders, "wallets": WALLETS, "contracts": CONTRACTS, "state": state},
    )


def _page(request: Request, name: str, ctx: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, name, {"iso": _iso, **ctx}, status_code=status_code
    )
    return response


# --- Tashilat agency counter ------------------------------------------------------------------


def pay_cash(state: AmanpayState, code: str, amount: str | None) -> tuple[str, str, Order | None]:
    order_id = state.codes.get(_normalize_code(code))
    order = state.orders.get(order_id) if order_id else None
    if order is None:
        return "refused", "unknown", None
    _expire(state, order)
    if order.status == "paid":
        return "refused", "already_paid", order
    if order.status in ("expired", "cancelled"):
        return "refused", "expired", order
    if amount is None or amount != order.amount:
        return "refused", "wrong_amount", order
    order.status = "paid"
    order.paid_at = time.time()
    order.transaction_id = "TSH" + secrets.token_hex(5).upper()
    return "paid", "", order


REFUSAL_LABELS = {
    "unknown": "Code de paiement inconnu.",
    "expired": "Code de paiement expiré ou annulé.",
    "already_paid": "Ce code a déjà été payé.",
    "wrong_amount": "Le montant ne correspond pas à la commande.",
}


async def _tashilat(request: Request, code: str, raw_amount: Any, delay: float) -> dict[str, Any]:
    state = _state(request)
    result, reason, order = pay_cash(state, code, _amount(raw_amount))
    if result == "paid" and order is not None:
        await notify(request, order, _event(state, order, "paid", channel="tashilat"), delay=max(delay, 0.0))
        return {
            "result": "paid",
            "order_id": order.order_id,
            "amount": order.amount,
            "transaction_id": order.transaction_id,
            "receipt": f"Reçu Tashilat {order.transaction_id}",
        }
    return {"result": "refused", "reason": reason, "message": REFUSAL_LABELS[reason]}


@router.post("/tashilat/payments", name="tashilat_pay_json")
async def tashilat_pay_json(request: Request) -> JSONResponse:
    try:
        data = await request.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    # notify_delay_seconds (sandbox only): the agency paid in time, but its notification comes late.
    delay = float(data.get("notify_delay_seconds") or 0)
    return JSONResponse(await _tashilat(request, str(data.get("code", "")), data.get("amount"), delay))


@router.get("/tashilat", response_class=HTMLResponse, name="tashilat_counter")
async def tashilat_counter(request: Request) -> HTMLResponse:
    return _page(request, "amanpay/tashilat.html", {"outcome": None, "form": {}})


@router.post("/tashilat", response_class=HTMLResponse, name="tashilat_counter_pay")
async def tashilat_counter_pay(request: Request) -> HTMLResponse:
    form = await request.form()
    values = {k: str(v) for k, v in form.items()}
    try:
        delay = float(values.get("notify_delay_seconds") or 0)
    except ValueError:
        delay = 0.0
    outcome = await _tashilat(
        request, values.get("code", ""), values.get("amount", "").replace(",", "."), delay
    )
    return _page(request, "amanpay/tashilat.html", {"outcome": outcome, "form": values})


# --- Amanty wallet ----------------------------------------------------------------------------


def _order_for_amanty(state: AmanpayState, order_id: str) -> Order | None:
    order = state.orders.get(order_id)
    return order if order is not None and order.method == "amanty" else None


@router.get("/amanpay/amanty/{order_id}", response_class=HTMLResponse, name="amanty_page")
async def amanty_page(request: Request, order_id: str) -> HTMLResponse:
    order = _order_for_amanty(_state(request), order_id)
    if order is None:
        return _page(request, "amanpay/amanty.html", {"order": None, "error": "Commande inconnue."}, 404)
    return _page(request, "amanpay/amanty.html", {"order": order, "step": "login", "error": None})


@router.post("/amanpay/amanty/{order_id}", response_class=HTMLResponse, name="amanty_submit")
async def amanty_submit(request: Request, order_id: str) -> Response:
    state = _state(request)
    order = _order_for_amanty(state, order_id)
    if order is None:
        return _page(request, "amanpay/amanty.html", {"order": None, "error": "Commande inconnue."}, 404)
    form = {k: str(v) for k, v in (await request.form()).items()}
    action = form.get("action", "login")
    if action == "cancel":
        if order.status == "pending":
            order.status = "cancelled"
            await notify(request, order, _event(state, order, "cancelled", channel="amanty"))
        return RedirectResponse(order.return_url or "/", status_code=303)
    if order.status != "pending":
        return _page(request, "amanpay/amanty.html", {"order": order, "step": "done", "error": None})
    wallet = next((w for w in WALLETS if w.login == form.get("login", "").strip().lower()), None)
    if wallet is None or not hmac.compare_digest(wallet.password.encode(), form.get("password", "").encode()):
        ctx = {
            "order": order,
            "step": "login",
            "error": "Identifiant ou mot de passe Amanty incorrect.",
            "login": form.get("login", ""),
        }
        return _page(request, "amanpay/amanty.html", ctx, 401)
    if action == "login":
        ctx = {
            "order": order,
            "step": "confirm",
            "error": None,
            "wallet": wallet,
            "balance": state.balances[wallet.login],
            "password": form.get("password", ""),
        }
        return _page(request, "amanpay/amanty.html", ctx)
    balance = state.balances[wallet.login]
    if balance < Decimal(order.amount):
        order.refusals += 1
        await notify(
            request, order, _event(state, order, "refused", channel="amanty", reason="insufficient_balance")
        )
        ctx = {
            "order": order,
            "step": "refused",
            "error": "Solde Amanty insuffisant pour régler cette commande.",
            "wallet": wallet,
            "balance": balance,
        }
        return _page(request, "amanpay/amanty.html", ctx, 402)
    state.balances[wallet.login] = balance - Decimal(order.amount)
    order.status = "paid"
    order.paid_at = time.time()
    order.transaction_id = "AMT" + secrets.token_hex(5).upper()
    await notify(request, order, _event(state, order, "paid", channel="amanty", wallet=wallet.login))
    return RedirectResponse(order.return_url or "/", status_code=303)


# --- SMS gateway ------------------------------------------------------------------------------


def send_sms(state: AmanpayState, to: str, text: str, sender: str) -> Sms:
    message = Sms(len(state.sms) + 1, normalize_phone(to), sender, text, _iso(time.time()))
    state.sms.append(message)
    return message


@router.post("/sms/messages", name="sms_send")
async def sms_send(request: Request) -> JSONResponse:
    data = await request.json()
    message = send_sms(
        _state(request), str(data.get("to", "")), str(data.get("text", "")), str(data.get("sender", ""))
    )
    return JSONResponse({"id": message.id, "status": "queued"}, status_code=202)


@router.get("/sms", name="sms_inbox")
async def sms_inbox(request: Request) -> Response:
    state = _state(request)
    to = request.query_params.get("to")
    phone = request.query_params.get("phone")
    if to is not None:
        number = normalize_phone(to)
        return JSONResponse([m.__dict__ for m in reversed(state.sms) if m.to == number])
    shown = normalize_phone(phone) if phone else None
    messages = [m for m in reversed(state.sms) if shown is None or m.to == shown]
    return _page(request, "amanpay/sms.html", {"messages": messages, "phone": shown, "contracts": CONTRACTS})


# --- PayDirect (Banque Populaire) -------------------------------------------------------------


async def _issue_otp(request: Request, state: AmanpayState, auth: Authorization) -> None:
    otp = f"{secrets.randbelow(10**OTP_LENGTH):0{OTP_LENGTH}d}"
    auth.otp_mac = state.otp_mac(auth.ref, otp)
    auth.otp_expires = time.time() + state.settings.paydirect_otp_ttl_seconds
    auth.attempts_left = OTP_MAX_ATTEMPTS
    auth.sends += 1
    minutes = state.settings.paydirect_otp_ttl_seconds // 60
    text = (
        f"Banque Populaire PayDirect : votre code secret est {otp} pour le paiement de {auth.amount} MAD "
        f"(commande {auth.order_id}). Valable {minutes} min. Ne le communiquez a personne."
    )
    await _deliver_sms(request, state, auth.contract.phone, text)


async def _deliver_sms(request: Request, state: AmanpayState, to: str, text: str) -> None:
    """Through the SMS gateway over HTTP (``SMS_GATEWAY_URL``), as the bank would; in-process if unset
    or unreachable, so that a development setup never loses a code. The text is never logged."""
    url = state.settings.sms_gateway_url.rstrip("/")
    if url:
        outbound: Outbound = request.app.state.outbound
        try:
            async with outbound.client() as client:
                reply = await client.post(
                    f"{url}/messages", json={"to": to, "text": text, "sender": "BP-PayDirect"}
                )
            if reply.status_code < 300:
                return
            log.warning("PayDirect sandbox: SMS gateway answered %s; delivered in-process", reply.status_code)
        except Exception as exc:  # the gateway is part of the sandbox: fall back rather than lose the code
            log.warning(
                "PayDirect sandbox: SMS gateway unreachable (%s); delivered in-process", type(exc).__name__
            )
    send_sms(state, to, text, "BP-PayDirect")


def _auth_view(auth: Authorization) -> dict[str, Any]:
    body: dict[str, Any] = {
        "auth_ref": auth.ref,
        "order_id": auth.order_id,
        "status": auth.status,
        "otp_expires_at": _iso(auth.otp_expires),
        "attempts_left": auth.attempts_left,
        "sends": auth.sends,
    }
    if auth.status == "authorized":
        body |= {"transaction_id": auth.transaction_id, "authorization_code": auth.authorization_code}
    return body


async def _paydirect_body(request: Request, label: str) -> dict[str, Any] | None:
    state = _state(request)
    return _signed_json(
        await request.body(),
        request.headers.get(PAYDIRECT_HEADER, ""),
        state.settings.paydirect_secret_key,
        label,
    )


def _paydirect_reply(
    state: AmanpayState, body: dict[str, Any], label: str, status_code: int = 200
) -> Response:
    return signed_reply(body, state.settings.paydirect_secret_key, label, PAYDIRECT_HEADER, status_code)


@router.post("/paydirect/api/authorizations", name="paydirect_start")
async def paydirect_start(request: Request) -> Response:
    state = _state(request)
    raw = await request.body()
    try:
        data = _json_object(raw)
    except Unreadable:
        return _refused(400, "invalid_request", "Corps JSON attendu.")
    order_id = str(data.get("order_id", ""))
    amount = _amount(data.get("amount"))
    if not order_id or amount is None:
        return _refused(422, "invalid_request", "Demande invalide.")
    if not _signature_ok(
        raw,
        request.headers.get(PAYDIRECT_HEADER, ""),
        state.settings.paydirect_secret_key,
        AUTHORIZATION_CREATE,
    ):
        return _refused(401, "bad_signature", "Signature invalide.")
    if order_id in state.by_order:
        return _paydirect_reply(
            state,
            {"result": "otp_sent", **_auth_view(state.authorizations[state.by_order[order_id]])},
            AUTHORIZATION,
        )
    number = str(data.get("contract_number", "")).strip().upper()
    contract = next((c for c in CONTRACTS if c.number == number), None)
    if contract is None:
        return _refused(422, "unknown_contract", "Numéro de contrat PayDirect inconnu.")
    if not hmac.compare_digest(contract.cin, str(data.get("cin", "")).strip().upper()):
        return _refused(422, "contract_mismatch", "Le CIN ne correspond pas au contrat PayDirect.")
    if normalize_phone(str(data.get("phone", ""))) != contract.phone:
        return _refused(422, "phone_mismatch", "Le numéro de téléphone n'est pas celui du contrat.")
    auth = Authorization(
        ref="PDA" + secrets.token_hex(6).upper(),
        order_id=order_id,
        amount=amount,
        contract=contract,
        mandataire=str(data.get("mandataire", ""))[:120],
    )
    await _issue_otp(request, state, auth)
    state.authorizations[auth.ref] = auth
    state.by_order[order_id] = auth.ref
    return _paydirect_reply(state, {"result": "otp_sent", **_auth_view(auth)}, AUTHORIZATION, 201)


@router.post("/paydirect/api/authorizations/{ref}/otp", name="paydirect_resend")
async def paydirect_resend(request: Request, ref: str) -> Response:
    state = _state(request)
    if await _paydirect_body(request, OTP_RESEND) is None:
        return _refused(401, "bad_signature", "Signature invalide.")
    auth = state.authorizations.get(ref)
    if auth is None:
        return _refused(404, "unknown_authorization", "Autorisation inconnue.")
    if auth.status == "authorized":
        return _refused(409, "already_authorized", "Paiement déjà autorisé.")
    await _issue_otp(request, state, auth)
    return _paydirect_reply(state, {"result": "otp_sent", **_auth_view(auth)}, OTP_SENT)


@router.post("/paydirect/api/authorizations/{ref}/verify", name="paydirect_verify")
async def paydirect_verify(request: Request, ref: str) -> Response:
    state = _state(request)
    data = await _paydirect_body(request, OTP_VERIFY)
    if data is None:
        return _refused(401, "bad_signature", "Signature invalide.")
    auth = state.authorizations.get(ref)
    if auth is None:
        return _refused(404, "unknown_authorization", "Autorisation inconnue.")
    request_id = str(data.get("request_id", ""))
    if request_id and request_id in auth.verdicts:
        return _paydirect_reply(state, auth.verdicts[request_id], OTP_VERDICT)
    otp = str(data.get("otp", ""))
    if auth.status == "authorized":
        verdict: dict[str, Any] = {"result": "already_authorized", **_auth_view(auth)}
    elif auth.attempts_left <= 0:
        verdict = {"result": "dead", **_auth_view(auth)}
    elif time.time() > auth.otp_expires:
        verdict = {"result": "expired", **_auth_view(auth)}
    elif hmac.compare_digest(state.otp_mac(auth.ref, otp), auth.otp_mac):
        auth.status = "authorized"
        auth.otp_mac = ""  # single use
        auth.transaction_id = "BP" + secrets.token_hex(5).upper()
        auth.authorization_code = f"{secrets.randbelow(10**6):06d}"
        verdict = {"result": "authorized", **_auth_view(auth)}
    else:
        auth.attempts_left -= 1
        verdict = {"result": "wrong" if auth.attempts_left > 0 else "dead", **_auth_view(auth)}
    # The verdict names the request it answers: it cannot be replayed as another request's.
    verdict["request_id"] = request_id
    if request_id:
        auth.verdicts[request_id] = verdict
    return _paydirect_reply(state, verdict, OTP_VERDICT)
