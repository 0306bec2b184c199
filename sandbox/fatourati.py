"""An imitation of CMI Fatourati: bill references that a payer pays in a bank app or at an agency.

Reached by us over HTTP only, signed as ../shared/partners.md says, with the message type first
(sandbox/fatourati_signature.py). Like CMI it
checks every field of a request before its signature (and signs no field holding ``|`` or a control
character), refuses a payment on an expired, cancelled or already paid reference, calls the
merchant's callback, signed, after a payment, and verifies the merchant's signed answer (status
included): an answer it cannot verify counts as not delivered and is tried again. Its own refusals
are fixed texts, unsigned. Tokens and their payments are kept in the sandbox's store; the callback
is a delivery (sandbox/deliveries.py), written with the payment it reports.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from sandbox.context import Sandbox, sandbox_of
from sandbox.deliveries import Delivery, Purpose, Reply, new_delivery
from sandbox.fatourati_signature import (
    AMOUNT,
    ANSWER_STATUSES,
    CALLBACK,
    CALLBACK_ANSWER,
    CURRENCY_MAD,
    ORDER_ID,
    REFERENCE,
    TOKEN_CANCEL,
    TOKEN_CANCEL_RESPONSE,
    TOKEN_REQUEST,
    TOKEN_RESPONSE,
    TOKEN_STATUS,
    TOKEN_STATUS_RESPONSE,
    fields_ok,
    sign,
    verify,
)
from sandbox.runtime import log
from sandbox.store import Record, Tx

router = APIRouter(prefix="/fatourati")


@dataclass(frozen=True)
class BankChannel:
    code: str
    name: str
    operator: str
    asks_amount: bool
    agency: bool = False


# The guide's channels; those whose steps say "saisir la référence ... et le montant" ask the amount.
CHANNELS: tuple[BankChannel, ...] = (
    BankChannel("attijarinet", "AttijariNet / Attijari Mobile", "Attijariwafa bank", True),
    BankChannel("bmce", "BMCE Portail / BMCE Direct", "Bank of Africa", True),
    BankChannel("cih", "CIH Online / CIH Online Mobile", "CIH Bank", False),
    BankChannel("baridbank", "Barid Bank Mobile", "Al Barid Bank", True),
    BankChannel("cam", "CAM Online", "Crédit Agricole du Maroc", False),
    BankChannel("cdm", "CDM Banque Direct", "Crédit du Maroc", False),
    BankChannel("sgma", "SG Maroc Cashnet", "Société Générale Maroc", False),
    BankChannel("cashplus", "CashPlus", "CashPlus", False, agency=True),
    BankChannel("globalvision", "Global Vision Fawatir", "Global Vision", False, agency=True),
    BankChannel("fawatircash", "CMI Fawatir Cash", "CMI", False, agency=True),
    BankChannel("damane", "DamanePay / DamanCash", "Damane Cash", False, agency=True),
)
BY_CODE = {c.code: c for c in CHANNELS}


class Payment(BaseModel):
    """One transaction on a reference, and what the merchant answered to its callback."""

    transaction_number: str
    channel: str
    at: str
    decision_code: str
    merchant_status: int | None = None
    merchant_answer: Any = None
    merchant_answer_verified: bool = False


class Token(Record):
    kind = "fatourati_token"

    ref: str
    order_id: str
    amount: str
    expires_at: datetime
    callback_url: str
    customer: dict[str, Any]
    items: list[dict[str, Any]]
    created_at: datetime
    cancelled: bool = False
    paid_by: str | None = None  # transaction number
    payments: list[Payment] = Field(default_factory=list)

    def key(self) -> str:
        return self.ref

    def secondary(self) -> str:
        return self.order_id  # one token per order

    def status(self, now: datetime) -> str:
        if self.paid_by:
            return "PAID"
        if self.cancelled:
            return "CANCELLED"
        if now >= self.expires_at:
            return "EXPIRED"
        return "PENDING"

    def payment(self, transaction_number: str) -> Payment | None:
        return next((p for p in self.payments if p.transaction_number == transaction_number), None)


def _new_ref(tx: Tx) -> str:
    while True:
        ref = "10890" + f"{secrets.randbelow(10**8):08d}"
        if tx.get(Token, ref) is None:
            return ref


def _new_txn(tx: Tx, now: datetime) -> str:
    return f"FTR{now:%y%m%d}{tx.next_number('fatourati_transaction'):06d}{secrets.randbelow(1000):03d}"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


# --- the merchant API ------------------------------------------------------------------------


@router.post("/api/tokens")
async def create_token(request: Request) -> Response:
    sandbox = sandbox_of(request)
    settings = sandbox.settings
    body = await _json_object(request)
    if body is None:
        return _error(400, "bad_request", "Corps JSON attendu.")
    if not fields_ok(body, TOKEN_REQUEST[1]) or not ORDER_ID.fullmatch(str(body["orderId"])):
        return _error(400, "bad_request", "Champs invalides.")
    if body.get("merchantCode") != settings.fatourati_merchant_code or body.get("storeId") != (
        settings.fatourati_store_id
    ):
        return _error(403, "unknown_merchant", "Marchand ou magasin inconnu.")
    if str(body.get("currency")) != CURRENCY_MAD:
        return _error(422, "bad_currency", "Seul le dirham (504) est accepté.")
    try:
        if not AMOUNT.fullmatch(str(body.get("amount"))):
            raise ValueError("amount")
        amount = Decimal(str(body.get("amount")))
        expires = datetime.fromisoformat(str(body.get("expiryDate")))
    except (InvalidOperation, ValueError):
        return _error(422, "bad_fields", "Montant ou date d'expiration invalide.")
    if not verify(body, TOKEN_REQUEST, settings.fatourati_api_key):
        return _error(401, "bad_signature", "Signature invalide.")
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    items = body.get("items") or []
    if amount <= 0 or not items:
        return _error(422, "bad_fields", "Montant positif et au moins un article requis.")
    items_total = sum((Decimal(str(i.get("amount", "0"))) for i in items), Decimal("0"))
    if items_total != amount:
        return _error(422, "bad_items", "La somme des articles ne fait pas le montant.")
    order_id = str(body.get("orderId"))

    def token_for_order(tx: Tx) -> Token:
        existing = tx.find(Token, order_id)
        if existing:  # idempotent per order: a retried creation gets the same reference
            return existing[0]
        token = Token(
            ref=_new_ref(tx),
            order_id=order_id,
            amount=f"{amount:.2f}",
            expires_at=expires,
            callback_url=str(body.get("callbackUrl") or ""),
            customer=dict(body.get("customer") or {}),
            items=list(items),
            created_at=sandbox.clock(),
        )
        tx.put(token)
        return token

    token = await sandbox.store.call(token_for_order)
    answer = {
        "tokenRef": token.ref,
        "orderId": token.order_id,
        "amount": token.amount,
        "expiryDate": token.expires_at.isoformat(),
        "status": token.status(sandbox.clock()),
    }
    return JSONResponse({**answer, "signature": sign(answer, TOKEN_RESPONSE, settings.fatourati_api_key)})


@router.post("/api/tokens/{ref}/cancel")
async def cancel_token(request: Request, ref: str) -> Response:
    sandbox = sandbox_of(request)
    settings = sandbox.settings
    received = await _json_object(request)
    if received is None:
        return _error(400, "bad_request", "Corps JSON attendu.")
    body = {**received, "tokenRef": ref}
    if not fields_ok(body, TOKEN_CANCEL[1]) or not REFERENCE.fullmatch(ref):
        return _error(400, "bad_request", "Champs invalides.")
    if body.get("merchantCode") != settings.fatourati_merchant_code or body.get("storeId") != (
        settings.fatourati_store_id
    ):
        return _error(403, "unknown_merchant", "Marchand ou magasin inconnu.")
    if not verify(body, TOKEN_CANCEL, settings.fatourati_api_key):
        return _error(401, "bad_signature", "Signature invalide.")

    def cancel(tx: Tx) -> Token | None:
        token = tx.get(Token, ref)
        if token is not None and token.paid_by is None:
            token.cancelled = True
            tx.put(token)
        return token

    token = await sandbox.store.call(cancel)
    if token is None:
        return _error(404, "NOT_FOUND", "Référence inconnue.")
    answer = {"tokenRef": ref, "status": token.status(sandbox.clock())}
    return JSONResponse(
        {**answer, "signature": sign(answer, TOKEN_CANCEL_RESPONSE, settings.fatourati_api_key)}
    )


@router.post("/api/tokens/{ref}/status")
async def token_status_signed(request: Request, ref: str) -> Response:
    """The merchant's look-up of a token (signed both ways): its status and the paying transaction."""
    sandbox = sandbox_of(request)
    settings = sandbox.settings
    received = await _json_object(request)
    if received is None:
        return _error(400, "bad_request", "Corps JSON attendu.")
    body = {**received, "tokenRef": ref}
    if not fields_ok(body, TOKEN_STATUS[1]) or not REFERENCE.fullmatch(ref):
        return _error(400, "bad_request", "Champs invalides.")
    if body.get("merchantCode") != settings.fatourati_merchant_code or body.get("storeId") != (
        settings.fatourati_store_id
    ):
        return _error(403, "unknown_merchant", "Marchand ou magasin inconnu.")
    if not verify(body, TOKEN_STATUS, settings.fatourati_api_key):
        return _error(401, "bad_signature", "Signature invalide.")
    token = await sandbox.store.call(lambda tx: tx.get(Token, ref))
    if token is None:
        return _error(404, "NOT_FOUND", "Référence inconnue.")
    paying = token.payment(token.paid_by) if token.paid_by else None
    answer = {
        "tokenRef": ref,
        "orderId": token.order_id,
        "amount": token.amount,
        "status": token.status(sandbox.clock()),
        "transactionNumber": paying.transaction_number if paying else "",
        "transactionDate": paying.at if paying else "",
        "channel": paying.channel if paying else "",
    }
    return JSONResponse(
        {**answer, "signature": sign(answer, TOKEN_STATUS_RESPONSE, settings.fatourati_api_key)}
    )


@router.get("/api/tokens/{ref}")
async def token_status(request: Request, ref: str) -> Response:
    sandbox = sandbox_of(request)
    token = await sandbox.store.call(lambda tx: tx.get(Token, ref))
    if token is None:
        return JSONResponse({"tokenRef": ref, "status": "NOT_FOUND"}, status_code=404)
    return JSONResponse(
        {
            "tokenRef": ref,
            "orderId": token.order_id,
            "amount": token.amount,
            "expiryDate": token.expires_at.isoformat(),
            "status": token.status(sandbox.clock()),
            "payments": [p.model_dump() for p in token.payments],
        }
    )


# --- paying: the bank channels ---------------------------------------------------------------


REFUSALS = {
    "PAID": "Cette référence a déjà été payée.",
    "CANCELLED": "Cette référence a été annulée.",
    "EXPIRED": "Référence expirée : passé le délai, le paiement est refusé.",
}


def _amount_matches(typed: str | None, expected: str) -> bool:
    try:
        return typed is not None and Decimal(typed.replace(",", ".").replace(" ", "")) == Decimal(expected)
    except InvalidOperation:
        return False


async def pay(
    sandbox: Sandbox, reference: str, amount: str | None, channel_code: str, refuse: bool = False
) -> dict[str, Any]:
    """What a bank channel does when the payer validates: CMI's rules, then the signed callback."""
    settings = sandbox.settings
    channel = BY_CODE.get(channel_code)
    if channel is None:
        return {"result": "refused", "reason": "Canal inconnu."}
    reference = reference.strip().replace(" ", "")

    def take_payment(tx: Tx) -> dict[str, Any] | tuple[Token, Delivery]:
        token = tx.get(Token, reference) if len(reference) == 13 else None
        if token is None:
            return {"result": "refused", "reason": "Référence Fatourati inconnue."}
        now = sandbox.clock()
        status = token.status(now)
        if status != "PENDING":
            return {"result": "refused", "reason": REFUSALS[status], "status": status}
        if channel.asks_amount and not _amount_matches(amount, token.amount):
            return {"result": "refused", "reason": "Le montant ne correspond pas à la référence."}
        txn = _new_txn(tx, now)
        fields: dict[str, object] = {
            "tokenRef": token.ref,
            "orderId": token.order_id,
            "totalAmount": token.amount,
            "currency": CURRENCY_MAD,
            "transactionDate": now.isoformat(),
            "transactionNumber": txn,
            "channel": channel.code,
            "operator": channel.operator,
            "decisionCode": "1" if refuse else "0",
            "merchantCode": settings.fatourati_merchant_code,
            "storeId": settings.fatourati_store_id,
        }
        fields["signature"] = sign(fields, CALLBACK, settings.fatourati_api_key)
        if not refuse:
            token.paid_by = txn
        payment = Payment(
            transaction_number=txn,
            channel=channel.code,
            at=now.isoformat(),
            decision_code=str(fields["decisionCode"]),
        )
        token.payments.append(payment)
        tx.put(token)
        tries = sandbox.tuning.fatourati_callback_tries
        delivery = new_delivery(
            tx, CALLBACK_DELIVERY, f"{token.ref}/{txn}", token.callback_url, json.dumps(fields),
            {"Content-Type": "application/json"}, max_tries=tries, backoff_seconds=0.0,
        )  # fmt: skip
        return token, delivery

    taken = await sandbox.store.call(take_payment)
    if isinstance(taken, dict):
        return taken
    token, delivery = taken
    # CMI calls the merchant while the payer waits (three tries), then shows the merchant's answer.
    await sandbox.outbox.dispatch(delivery.id, inline_tries=delivery.max_tries)
    txn = delivery.subject.rpartition("/")[2]
    paid = await sandbox.store.call(lambda tx: tx.get(Token, token.ref))
    record = paid.payment(txn) if paid is not None else None
    assert record is not None
    return {
        "result": "refused" if refuse else "paid",
        "reason": "Paiement refusé par la banque." if refuse else None,
        "transaction_number": txn,
        "reference": token.ref,
        "amount": token.amount,
        "merchant_answer": record.merchant_answer,
        "merchant_status": record.merchant_status,
        "merchant_answer_verified": record.merchant_answer_verified,
    }


def answer_verified(body: Any, sent: Mapping[str, object], api_key: str) -> bool:
    """The merchant's 200 answer: about this transaction, a known status, signed with it."""
    if not isinstance(body, dict) or body.get("status") not in ANSWER_STATUSES:
        return False
    if any(body.get(name) != sent[name] for name in ("tokenRef", "orderId", "transactionNumber")):
        return False
    return fields_ok(body, CALLBACK_ANSWER[1]) and verify(body, CALLBACK_ANSWER, api_key)


CALLBACK_DELIVERY = "fatourati_callback"


def callback_purpose(api_key: str) -> Purpose:
    """A 200 whose signature does not verify is no answer: tried again, like a server error."""

    def after(tx: Tx, delivery: Delivery, reply: Reply) -> bool:
        ref, _, txn = delivery.subject.rpartition("/")
        token = tx.get(Token, ref)
        record = token.payment(txn) if token is not None else None
        if token is None or record is None:
            return True
        body: Any = reply.error
        if reply.text is not None:
            try:
                body = json.loads(reply.text)
            except ValueError:
                body = reply.text
        sent = json.loads(delivery.body)
        verified = reply.status_code == 200 and answer_verified(body, sent, api_key)
        record.merchant_status, record.merchant_answer = reply.status_code, body
        record.merchant_answer_verified = verified
        tx.put(token)
        if not verified:
            log.warning("fatourati callback to %s: answer %s not verified", delivery.url, reply.status_code)
        return verified or (reply.status_code is not None and 400 <= reply.status_code < 500)

    return Purpose(after=after)


def install(sandbox: Sandbox) -> None:
    sandbox.outbox.register(CALLBACK_DELIVERY, callback_purpose(sandbox.settings.fatourati_api_key))


@router.post("/payments")
async def pay_api(request: Request) -> Response:
    """For scripts: {"reference","amount","channel"} does what the channel page does."""
    body = await _json_object(request) or {}
    result = await pay(
        sandbox_of(request),
        str(body.get("reference", "")),
        None if body.get("amount") is None else str(body.get("amount")),
        str(body.get("channel", "")),
        refuse=bool(body.get("refuse", False)),
    )
    return JSONResponse(result)
