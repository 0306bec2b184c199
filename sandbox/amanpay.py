"""An imitation of Amanpay: the merchant's orders (cash payment code, Amanty wallet), the wallets'
balances, and the signed notifications Amanpay sends the merchant when an order is paid, refused
or cancelled. Reached by us over HTTP only; signed as sandbox/signed_json.py says.

A cash code is paid at a Tashilat agency (sandbox/tashilat.py), an Amanty order on the wallet page
(sandbox/amanty.py); both report through ``notify``: a delivery (sandbox/deliveries.py) written
with the payment, tried at once (or after the agency's delay), then again with backoff. Every value
(keys, TTLs, URLs) comes from settings, so pointing the platform at the real partner is a
configuration change.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import Field

from portnet.settings import Settings
from sandbox import signed_json
from sandbox.context import Sandbox, sandbox_of
from sandbox.deliveries import Delivery, Purpose, Reply, new_delivery
from sandbox.paydirect import CONTRACTS
from sandbox.signed_json import Unreadable, refused, signed_reply
from sandbox.store import Record, Tx

router = APIRouter(prefix="/amanpay")

# The first signed element of each message type: a signature never passes for another type's.
NOTIFICATION = "AMANPAY_NOTIFICATION"
ORDER_CREATE, ORDER_CREATED = "AMANPAY_ORDER_CREATE", "AMANPAY_ORDER_CREATED"
ORDER_CANCEL, ORDER_CANCEL_RESULT = "AMANPAY_ORDER_CANCEL", "AMANPAY_ORDER_CANCEL_RESULT"
ORDER_STATUS, ORDER_STATUS_RESULT = "AMANPAY_ORDER_STATUS", "AMANPAY_ORDER_STATUS_RESULT"
HEADER = "X-Amanpay-Signature"
NOTIFICATION_DELIVERY = "amanpay_notification"


@dataclass(frozen=True)
class Wallet:
    login: str
    password: str
    holder: str
    balance: Decimal  # at the wallet's opening; what it holds now is a WalletBalance


# Seeded accounts, documented in README.md.
WALLETS = (
    Wallet("amanty.sataa@demo.ma", "Amanty2026!", "SATAA IMPORT EXPORT", Decimal("250000.00")),
    Wallet("amanty.aska@demo.ma", "Amanty2026!", "ASKA LOGISTIQUE", Decimal("80000.00")),
    Wallet("amanty.petit@demo.ma", "Amanty2026!", "PETIT SOLDE SARL", Decimal("50.00")),
)


class WalletBalance(Record):
    kind = "amanty_balance"
    login: str
    balance: Decimal

    def key(self) -> str:
        return self.login


def balance_of(tx: Tx, wallet: Wallet) -> Decimal:
    stored = tx.get(WalletBalance, wallet.login)
    return wallet.balance if stored is None else stored.balance


def set_balance(tx: Tx, wallet: Wallet, balance: Decimal) -> None:
    tx.put(WalletBalance(login=wallet.login, balance=balance))


class Order(Record):
    kind = "amanpay_order"

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
    deliveries: list[dict[str, Any]] = Field(default_factory=list)

    def key(self) -> str:
        return self.order_id

    def secondary(self) -> str | None:
        return self.code  # a cash code is looked up when the agency types it

    def expire(self, now: float) -> None:
        if self.status == "pending" and self.expires is not None and now > self.expires:
            self.status = "expired"


def _new_code(tx: Tx) -> str:
    while True:
        digits = f"18{secrets.randbelow(10**10):010d}"
        code = f"{digits[:2]} {digits[2:6]} {digits[6:9]}-{digits[9:]}"
        if not tx.find(Order, code):
            return code


def event(settings: Settings, order: Order, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "merchant_id": settings.amanpay_merchant_id,
        "order_id": order.order_id,
        "amount": order.amount,
        "method": order.method,
        "status": status,
        "transaction_id": order.transaction_id or "",
        "paid_at": signed_json.iso(order.paid_at) if order.paid_at else "",
        "event_id": f"{order.order_id}-{status}-{len(order.deliveries)}-{secrets.token_hex(3)}"
        if status == "refused"
        else f"{order.order_id}-{status}",
        **extra,
    }


def notify(sandbox: Sandbox, tx: Tx, order: Order, body: dict[str, Any], delay: float = 0.0) -> Delivery:
    """The signed notification, written in the transaction of the change it reports."""
    raw = signed_json.dumps(body)
    signature = signed_json.sign(sandbox.settings.amanpay_secret_key, NOTIFICATION, raw)
    return new_delivery(
        tx,
        NOTIFICATION_DELIVERY,
        subject=f"{order.order_id}/{body['status']}",
        url=order.notify_url,
        body=raw.decode(),
        headers={"Content-Type": "application/json", HEADER: signature},
        max_tries=sandbox.tuning.amanpay_notify_max_tries,
        backoff_seconds=sandbox.tuning.amanpay_notify_backoff_seconds,
        delay_seconds=delay,
    )


async def send(sandbox: Sandbox, delivery: Delivery) -> None:
    """First try inline when due now (as the partner does before redirecting); the rest behind."""
    await sandbox.outbox.dispatch(delivery.id, inline_tries=1)


def _after_notification(tx: Tx, delivery: Delivery, reply: Reply) -> bool:
    order = tx.get(Order, delivery.subject.rpartition("/")[0])
    ok = reply.status_code is not None and 200 <= reply.status_code < 300
    if order is not None:
        status = delivery.subject.rpartition("/")[2]
        outcome: dict[str, Any] = {"event": status, "at": signed_json.iso(reply.at.timestamp())}
        if reply.status_code is None:
            outcome["error"] = (reply.error or "").split(":", 1)[0]
        else:
            outcome["status_code"] = reply.status_code
        order.deliveries.append(outcome)
        tx.put(order)
    return ok


def install(sandbox: Sandbox) -> None:
    sandbox.outbox.register(NOTIFICATION_DELIVERY, Purpose(after=_after_notification))


# --- the merchant API -------------------------------------------------------------------------


@router.post("/api/orders", name="amanpay_create_order")
async def create_order(request: Request) -> Response:
    sandbox = sandbox_of(request)
    settings = sandbox.settings
    raw = await request.body()
    try:
        data = signed_json.json_object(raw)
    except Unreadable:
        return refused(400, "invalid_request", "Corps JSON attendu.")
    if data.get("merchant_id") != settings.amanpay_merchant_id:
        return refused(403, "unknown_merchant", "Marchand inconnu.")
    order_id = str(data.get("order_id", ""))
    amount = signed_json.amount(data.get("amount"))
    method = data.get("method")
    if not order_id or amount is None or method not in ("code", "amanty"):
        return refused(422, "invalid_request", "Commande invalide (order_id, amount, method).")
    if not signed_json.signature_ok(
        raw, request.headers.get(HEADER, ""), settings.amanpay_secret_key, ORDER_CREATE
    ):
        return refused(401, "bad_signature", "Signature invalide.")

    def open_order(tx: Tx) -> tuple[Order, bool]:
        existing = tx.get(Order, order_id)
        if existing is not None:
            return existing, False
        order = Order(
            order_id=order_id,
            amount=amount,
            method=str(method),
            notify_url=str(data.get("notify_url", "")),
            return_url=str(data.get("return_url", "")),
            customer={k: str(v) for k, v in (data.get("customer") or {}).items()},
            created=sandbox.clock().timestamp(),
        )
        if method == "code":
            ttl = int(data.get("ttl_seconds") or settings.amanpay_code_ttl_seconds)
            order.expires = order.created + ttl
            order.code = _new_code(tx)
        tx.put(order)
        return order, True

    order, created = await sandbox.store.call(open_order)
    body: dict[str, Any] = {"order_id": order.order_id, "status": order.status, "amount": order.amount}
    if order.method == "code":
        body |= {"code": order.code, "expires_at": signed_json.iso(order.expires or 0)}
    else:
        body |= {"redirect_url": str(request.url_for("amanty_page", order_id=order.order_id))}
    return signed_reply(body, settings.amanpay_secret_key, ORDER_CREATED, HEADER, 201 if created else 200)


@router.post("/api/orders/{order_id}/cancel", name="amanpay_cancel_order")
async def cancel_order(request: Request, order_id: str) -> Response:
    sandbox = sandbox_of(request)
    key = sandbox.settings.amanpay_secret_key
    if (
        signed_json.signed_json(await request.body(), request.headers.get(HEADER, ""), key, ORDER_CANCEL)
        is None
    ):
        return refused(401, "bad_signature", "Signature invalide.")

    def cancel(tx: Tx) -> Order | None:
        order = tx.get(Order, order_id)
        if order is not None:
            order.expire(sandbox.clock().timestamp())
            if order.status in ("pending", "expired"):
                order.status = "cancelled"
            tx.put(order)
        return order

    order = await sandbox.store.call(cancel)
    if order is None:
        return refused(404, "unknown_order", "Commande inconnue.")
    return signed_reply({"order_id": order_id, "status": order.status}, key, ORDER_CANCEL_RESULT, HEADER)


@router.get("/api/orders/{order_id}", name="amanpay_order_status")
async def order_status(request: Request, order_id: str) -> Response:
    """Status look-up; the signature covers the order id (a GET has no body)."""
    sandbox = sandbox_of(request)
    key = sandbox.settings.amanpay_secret_key
    if not signed_json.signature_ok(order_id.encode(), request.headers.get(HEADER, ""), key, ORDER_STATUS):
        return refused(401, "bad_signature", "Signature invalide.")
    order = await sandbox.store.call(lambda tx: tx.get(Order, order_id))
    if order is None:
        return refused(404, "unknown_order", "Commande inconnue.")
    order.expire(sandbox.clock().timestamp())
    body = {
        "order_id": order.order_id,
        "status": order.status,
        "amount": order.amount,
        "method": order.method,
        "transaction_id": order.transaction_id,
        "expires_at": signed_json.iso(order.expires) if order.expires else None,
    }
    return signed_reply(body, key, ORDER_STATUS_RESULT, HEADER)


@router.get("", response_class=HTMLResponse, name="amanpay_index")
async def amanpay_index(request: Request) -> HTMLResponse:
    sandbox = sandbox_of(request)

    def read(tx: Tx) -> tuple[list[Order], dict[str, Decimal]]:
        return tx.all(Order, newest_first=True), {w.login: balance_of(tx, w) for w in WALLETS}

    orders, balances = await sandbox.store.call(read)
    now = sandbox.clock().timestamp()
    for order in orders:
        order.expire(now)
    context = {
        "orders": orders,
        "wallets": WALLETS,
        "balances": balances,
        "contracts": CONTRACTS,
        "iso": signed_json.iso,
    }
    return sandbox.page(request, "amanpay/index.html", context)
