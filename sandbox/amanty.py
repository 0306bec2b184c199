"""An imitation of Amanty, Amanpay's wallet: the page where the payer signs in and pays an order.

The merchant sends the payer here (the ``redirect_url`` of an Amanty order). The payer signs in
with a wallet of the sandbox (README.md lists them), sees the balance and confirms; too small a
balance is refused and Amanpay tells the merchant (``refused``), so the payer may use another
wallet; a cancel goes back to the merchant (``cancelled``). Balances are kept in the sandbox's
store: a debited wallet stays debited across restarts.
"""

from __future__ import annotations

import hmac
import secrets
from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sandbox import amanpay
from sandbox.amanpay import WALLETS, Order, Wallet, balance_of, set_balance
from sandbox.context import Sandbox, sandbox_of
from sandbox.deliveries import Delivery
from sandbox.store import Tx

router = APIRouter(prefix="/amanpay/amanty")

TEMPLATE = "amanty/wallet.html"
UNKNOWN_ORDER = {"order": None, "error": "Commande inconnue."}


def _amanty_order(tx: Tx, order_id: str) -> Order | None:
    order = tx.get(Order, order_id)
    return order if order is not None and order.method == "amanty" else None


def _wallet(login: str, password: str) -> Wallet | None:
    wallet = next((w for w in WALLETS if w.login == login.strip().lower()), None)
    if wallet is None or not hmac.compare_digest(wallet.password.encode(), password.encode()):
        return None
    return wallet


def cancel(sandbox: Sandbox, tx: Tx, order_id: str) -> tuple[Order | None, Delivery | None]:
    order = _amanty_order(tx, order_id)
    if order is None or order.status != "pending":
        return order, None
    order.status = "cancelled"
    tx.put(order)
    return order, amanpay.notify(
        sandbox, tx, order, amanpay.event(sandbox.settings, order, "cancelled", channel="amanty")
    )


def debit(
    sandbox: Sandbox, tx: Tx, order_id: str, wallet: Wallet
) -> tuple[Order | None, Decimal, Delivery | None]:
    """Pays the order from the wallet, or refuses for the balance; (order, balance, notification)."""
    order = _amanty_order(tx, order_id)
    if order is None or order.status != "pending":
        return order, Decimal(0), None
    balance = balance_of(tx, wallet)
    if balance < Decimal(order.amount):
        order.refusals += 1
        tx.put(order)
        body = amanpay.event(
            sandbox.settings, order, "refused", channel="amanty", reason="insufficient_balance"
        )
        return order, balance, amanpay.notify(sandbox, tx, order, body)
    set_balance(tx, wallet, balance - Decimal(order.amount))
    order.status = "paid"
    order.paid_at = sandbox.clock().timestamp()
    order.transaction_id = "AMT" + secrets.token_hex(5).upper()
    tx.put(order)
    body = amanpay.event(sandbox.settings, order, "paid", channel="amanty", wallet=wallet.login)
    return order, balance, amanpay.notify(sandbox, tx, order, body)


@router.get("/{order_id}", response_class=HTMLResponse, name="amanty_page")
async def amanty_page(request: Request, order_id: str) -> HTMLResponse:
    sandbox = sandbox_of(request)
    order = await sandbox.store.call(lambda tx: _amanty_order(tx, order_id))
    if order is None:
        return sandbox.page(request, TEMPLATE, UNKNOWN_ORDER, 404)
    return sandbox.page(request, TEMPLATE, {"order": order, "step": "login", "error": None})


@router.post("/{order_id}", response_class=HTMLResponse, name="amanty_submit")
async def amanty_submit(request: Request, order_id: str) -> Response:
    sandbox = sandbox_of(request)
    order = await sandbox.store.call(lambda tx: _amanty_order(tx, order_id))
    if order is None:
        return sandbox.page(request, TEMPLATE, UNKNOWN_ORDER, 404)
    form = {k: str(v) for k, v in (await request.form()).items()}
    action = form.get("action", "login")
    if action == "cancel":
        order, delivery = await sandbox.store.call(lambda tx: cancel(sandbox, tx, order_id))
        if delivery is not None:
            await amanpay.send(sandbox, delivery)
        return RedirectResponse((order.return_url if order else "") or "/", status_code=303)
    if order.status != "pending":
        return sandbox.page(request, TEMPLATE, {"order": order, "step": "done", "error": None})
    wallet = _wallet(form.get("login", ""), form.get("password", ""))
    if wallet is None:
        context = {
            "order": order,
            "step": "login",
            "error": "Identifiant ou mot de passe Amanty incorrect.",
            "login": form.get("login", ""),
        }
        return sandbox.page(request, TEMPLATE, context, 401)
    if action == "login":
        balance = await sandbox.store.call(lambda tx: balance_of(tx, wallet))
        context = {
            "order": order,
            "step": "confirm",
            "error": None,
            "wallet": wallet,
            "balance": balance,
            "password": form.get("password", ""),
        }
        return sandbox.page(request, TEMPLATE, context)
    paid, balance, delivery = await sandbox.store.call(lambda tx: debit(sandbox, tx, order_id, wallet))
    if delivery is not None:
        await amanpay.send(sandbox, delivery)
    if paid is None or (paid.status != "paid" and delivery is None):
        return sandbox.page(request, TEMPLATE, {"order": paid, "step": "done", "error": None})
    if paid.status != "paid":
        context = {
            "order": paid,
            "step": "refused",
            "error": "Solde Amanty insuffisant pour régler cette commande.",
            "wallet": wallet,
            "balance": balance,
        }
        return sandbox.page(request, TEMPLATE, context, 402)
    return RedirectResponse(paid.return_url or "/", status_code=303)
