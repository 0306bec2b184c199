"""An imitation of a Tashilat agency counter, where a payer pays an Amanpay cash code in cash.

The agent types the code and the amount; Tashilat refuses an unknown, expired, cancelled or
already paid code and a wrong amount, else takes the money and Amanpay notifies the merchant
(``sandbox.amanpay.notify``). ``notify_delay_seconds`` (sandbox only) makes that notification
arrive late, to show the merchant receiving money after its deadline.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from sandbox import amanpay, signed_json
from sandbox.context import Sandbox, sandbox_of
from sandbox.deliveries import Delivery
from sandbox.store import Tx

router = APIRouter(prefix="/tashilat")

REFUSAL_LABELS = {
    "unknown": "Code de paiement inconnu.",
    "expired": "Code de paiement expiré ou annulé.",
    "already_paid": "Ce code a déjà été payé.",
    "wrong_amount": "Le montant ne correspond pas à la commande.",
}


def normalize_code(code: str) -> str:
    """``180857637947`` or ``18-0857-637-947`` as printed: ``18 0857 637-947``."""
    digits = "".join(c for c in code if c.isdigit())
    if len(digits) != 12:
        return code.strip()
    return f"{digits[:2]} {digits[2:6]} {digits[6:9]}-{digits[9:]}"


def pay_cash(
    sandbox: Sandbox, tx: Tx, code: str, amount: str | None, delay: float
) -> tuple[str, amanpay.Order | None, Delivery | None]:
    """(refusal reason or "", the order, the notification): Tashilat's rules, then the payment."""
    found = tx.find(amanpay.Order, normalize_code(code))
    order = found[0] if found else None
    if order is None:
        return "unknown", None, None
    order.expire(sandbox.clock().timestamp())
    if order.status == "paid":
        return "already_paid", order, None
    if order.status in ("expired", "cancelled"):
        return "expired", order, None
    if amount is None or amount != order.amount:
        return "wrong_amount", order, None
    order.status = "paid"
    order.paid_at = sandbox.clock().timestamp()
    order.transaction_id = "TSH" + secrets.token_hex(5).upper()
    tx.put(order)
    body = amanpay.event(sandbox.settings, order, "paid", channel="tashilat")
    return "", order, amanpay.notify(sandbox, tx, order, body, delay=max(delay, 0.0))


async def counter_payment(sandbox: Sandbox, code: str, raw_amount: Any, delay: float) -> dict[str, Any]:
    amount = signed_json.amount(raw_amount)
    reason, order, delivery = await sandbox.store.call(lambda tx: pay_cash(sandbox, tx, code, amount, delay))
    if reason or order is None or delivery is None:
        reason = reason or "unknown"
        return {"result": "refused", "reason": reason, "message": REFUSAL_LABELS[reason]}
    await amanpay.send(sandbox, delivery)
    return {
        "result": "paid",
        "order_id": order.order_id,
        "amount": order.amount,
        "transaction_id": order.transaction_id,
        "receipt": f"Reçu Tashilat {order.transaction_id}",
    }


def _delay(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


@router.post("/payments", name="tashilat_pay_json")
async def tashilat_pay_json(request: Request) -> JSONResponse:
    try:
        data = await request.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    # notify_delay_seconds (sandbox only): the agency paid in time, but its notification comes late.
    delay = _delay(data.get("notify_delay_seconds"))
    outcome = await counter_payment(sandbox_of(request), str(data.get("code", "")), data.get("amount"), delay)
    return JSONResponse(outcome)


@router.get("", response_class=HTMLResponse, name="tashilat_counter")
async def tashilat_counter(request: Request) -> HTMLResponse:
    return sandbox_of(request).page(request, "tashilat/counter.html", {"outcome": None, "form": {}})


@router.post("", response_class=HTMLResponse, name="tashilat_counter_pay")
async def tashilat_counter_pay(request: Request) -> HTMLResponse:
    sandbox = sandbox_of(request)
    form = await request.form()
    values = {k: str(v) for k, v in form.items()}
    amount = values.get("amount", "").replace(",", ".")
    outcome = await counter_payment(
        sandbox, values.get("code", ""), amount, _delay(values.get("notify_delay_seconds"))
    )
    return sandbox.page(request, "tashilat/counter.html", {"outcome": outcome, "form": values})
