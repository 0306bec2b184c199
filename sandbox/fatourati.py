"""An imitation of CMI Fatourati: bill references that a payer pays in a bank app or at an agency.

Reached by us over HTTP only, signed as ../shared/partners.md says, with the message type first:
HMAC-SHA256 (hex, keyed with the store API key) over ``LABEL|field1|...|fieldN|API_KEY``. Like CMI it
checks every field of a request before its signature (and signs no field holding ``|`` or a control
character), refuses a payment on an expired, cancelled or already paid reference, calls the
merchant's callback, signed, after a payment, and verifies the merchant's signed answer (status
included): an answer it cannot verify counts as not delivered and is tried again. Its own refusals
are fixed texts, unsigned.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from portnet.settings import Settings
from sandbox.runtime import log

router = APIRouter(prefix="/fatourati")

CURRENCY_MAD = "504"
# (label, fields in signing order) per message type.
TOKEN_REQUEST = (
    "FATOURATI_TOKEN_REQUEST",
    ("amount", "currency", "merchantCode", "storeId", "orderId", "expiryDate"),
)
TOKEN_RESPONSE = ("FATOURATI_TOKEN_RESPONSE", ("tokenRef", "orderId", "amount", "expiryDate", "status"))
TOKEN_CANCEL = ("FATOURATI_TOKEN_CANCEL", ("merchantCode", "storeId", "tokenRef"))
TOKEN_CANCEL_RESPONSE = ("FATOURATI_TOKEN_CANCEL_RESPONSE", ("tokenRef", "status"))
CALLBACK = (
    "FATOURATI_CALLBACK",
    (
        "tokenRef",
        "orderId",
        "totalAmount",
        "currency",
        "transactionDate",
        "transactionNumber",
        "channel",
        "operator",
        "decisionCode",
        "merchantCode",
        "storeId",
    ),
)
CALLBACK_ANSWER = (
    "FATOURATI_CALLBACK_ANSWER",
    ("tokenRef", "orderId", "transactionNumber", "receiptNumber", "status"),
)
MessageType = tuple[str, Sequence[str]]

_UNSIGNABLE = re.compile(r"[|\x00-\x1f\x7f-\x9f\u2028\u2029]")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_AMOUNT = re.compile(r"(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,2})?")
_REFERENCE = re.compile(r"[0-9]{13}")
ANSWER_STATUSES = ("ACCEPTED", "RECEIVED_UNAPPLIED", "RECORDED")


def sign(fields: Mapping[str, object], message: MessageType, api_key: str) -> str:
    label, names = message
    values = ["" if fields.get(name) is None else str(fields.get(name)) for name in names]
    if any(_UNSIGNABLE.search(v) or len(v) > 255 for v in values):
        raise ValueError(f"{label}: a field cannot be signed")
    text = "|".join([label, *values, api_key])
    return hmac.new(api_key.encode(), text.encode(), hashlib.sha256).hexdigest()


def verify(fields: Mapping[str, object], message: MessageType, api_key: str) -> bool:
    given = fields.get("signature")
    if not isinstance(given, str) or not _HEX64.fullmatch(given):
        return False
    try:
        expected = sign(fields, message, api_key)
    except ValueError:
        return False
    return hmac.compare_digest(given.lower(), expected)


def _fields_ok(body: Mapping[str, object], names: Sequence[str]) -> bool:
    """CMI's own rule before any signature check: every signed field a bounded, plain string."""
    for name in (*names, "signature"):
        value = body.get(name)
        if not isinstance(value, str) or len(value) > 255 or _UNSIGNABLE.search(value):
            return False
    return True


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


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Token:
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
    payments: list[dict[str, Any]] = field(default_factory=list)

    def status(self, now: datetime) -> str:
        if self.paid_by:
            return "PAID"
        if self.cancelled:
            return "CANCELLED"
        if now >= self.expires_at:
            return "EXPIRED"
        return "PENDING"


@dataclass
class FatouratiState:
    settings: Settings
    tokens: dict[str, Token] = field(default_factory=dict)
    by_order: dict[str, str] = field(default_factory=dict)
    clock: Callable[[], datetime] = _utcnow
    txn_counter: int = 0

    def new_ref(self) -> str:
        while True:
            ref = "10890" + f"{secrets.randbelow(10**8):08d}"
            if ref not in self.tokens:
                return ref

    def new_txn(self) -> str:
        self.txn_counter += 1
        return f"FTR{self.clock():%y%m%d}{self.txn_counter:06d}{secrets.randbelow(1000):03d}"


def _state(request: Request) -> FatouratiState:
    state: FatouratiState = request.app.state.fatourati
    return state


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


# --- the merchant API ------------------------------------------------------------------------


@router.post("/api/tokens")
async def create_token(request: Request) -> Response:
    state = _state(request)
    settings = state.settings
    try:
        body = await request.json()
        assert isinstance(body, dict)
    except (ValueError, AssertionError):
        return _error(400, "bad_request", "Corps JSON attendu.")
    if not _fields_ok(body, TOKEN_REQUEST[1]) or not _ORDER_ID.fullmatch(str(body["orderId"])):
        return _error(400, "bad_request", "Champs invalides.")
    if body.get("merchantCode") != settings.fatourati_merchant_code or body.get("storeId") != (
        settings.fatourati_store_id
    ):
        return _error(403, "unknown_merchant", "Marchand ou magasin inconnu.")
    if str(body.get("currency")) != CURRENCY_MAD:
        return _error(422, "bad_currency", "Seul le dirham (504) est accepté.")
    try:
        if not _AMOUNT.fullmatch(str(body.get("amount"))):
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
    ref = state.by_order.get(order_id)
    if ref is None:  # idempotent per order: a retried creation gets the same reference
        ref = state.new_ref()
        state.tokens[ref] = Token(
            ref=ref,
            order_id=order_id,
            amount=f"{amount:.2f}",
            expires_at=expires,
            callback_url=str(body.get("callbackUrl") or ""),
            customer=dict(body.get("customer") or {}),
            items=list(items),
            created_at=state.clock(),
        )
        state.by_order[order_id] = ref
    token = state.tokens[ref]
    answer = {
        "tokenRef": token.ref,
        "orderId": token.order_id,
        "amount": token.amount,
        "expiryDate": token.expires_at.isoformat(),
        "status": token.status(state.clock()),
    }
    return JSONResponse({**answer, "signature": sign(answer, TOKEN_RESPONSE, settings.fatourati_api_key)})


@router.post("/api/tokens/{ref}/cancel")
async def cancel_token(request: Request, ref: str) -> Response:
    state = _state(request)
    settings = state.settings
    try:
        body = await request.json()
        assert isinstance(body, dict)
    except (ValueError, AssertionError):
        return _error(400, "bad_request", "Corps JSON attendu.")
    body = {**body, "tokenRef": ref}
    if not _fields_ok(body, TOKEN_CANCEL[1]) or not _REFERENCE.fullmatch(ref):
        return _error(400, "bad_request", "Champs invalides.")
    if body.get("merchantCode") != settings.fatourati_merchant_code or body.get("storeId") != (
        settings.fatourati_store_id
    ):
        return _error(403, "unknown_merchant", "Marchand ou magasin inconnu.")
    if not verify(body, TOKEN_CANCEL, settings.fatourati_api_key):
        return _error(401, "bad_signature", "Signature invalide.")
    token = state.tokens.get(ref)
    if token is None:
        return _error(404, "NOT_FOUND", "Référence inconnue.")
    if token.paid_by is None:
        token.cancelled = True
    answer = {"tokenRef": ref, "status": token.status(state.clock())}
    return JSONResponse(
        {**answer, "signature": sign(answer, TOKEN_CANCEL_RESPONSE, settings.fatourati_api_key)}
    )


@router.get("/api/tokens/{ref}")
async def token_status(request: Request, ref: str) -> Response:
    state = _state(request)
    token = state.tokens.get(ref)
    if token is None:
        return JSONResponse({"tokenRef": ref, "status": "NOT_FOUND"}, status_code=404)
    return JSONResponse(
        {
            "tokenRef": ref,
            "orderId": token.order_id,
            "amount": token.amount,
            "expiryDate": token.expires_at.isoformat(),
            "status": token.status(state.clock()),
            "payments": token.payments,
        }
    )


# --- paying: the bank channels ---------------------------------------------------------------


async def pay(
    request: Request, reference: str, amount: str | None, channel_code: str, refuse: bool = False
) -> dict[str, Any]:
    """What a bank channel does when the payer validates: CMI's rules, then the signed callback."""
    state = _state(request)
    settings = state.settings
    channel = BY_CODE.get(channel_code)
    if channel is None:
        return {"result": "refused", "reason": "Canal inconnu."}
    reference = reference.strip().replace(" ", "")
    token = state.tokens.get(reference)
    if token is None or len(reference) != 13:
        return {"result": "refused", "reason": "Référence Fatourati inconnue."}
    status = token.status(state.clock())
    if status != "PENDING":
        reasons = {
            "PAID": "Cette référence a déjà été payée.",
            "CANCELLED": "Cette référence a été annulée.",
            "EXPIRED": "Référence expirée : passé le délai, le paiement est refusé.",
        }
        return {"result": "refused", "reason": reasons[status], "status": status}
    if channel.asks_amount:
        try:
            ok = amount is not None and Decimal(amount.replace(",", ".").replace(" ", "")) == Decimal(
                token.amount
            )
        except InvalidOperation:
            ok = False
        if not ok:
            return {"result": "refused", "reason": "Le montant ne correspond pas à la référence."}
    txn = state.new_txn()
    now = state.clock()
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
    answer = await deliver(request, token, fields)
    record = {
        "transaction_number": txn,
        "channel": channel.code,
        "at": now.isoformat(),
        "decision_code": fields["decisionCode"],
        "merchant_status": answer.get("status_code"),
        "merchant_answer": answer.get("body"),
        "merchant_answer_verified": answer.get("verified", False),
    }
    token.payments.append(record)
    result = "refused" if refuse else "paid"
    return {
        "result": result,
        "reason": "Paiement refusé par la banque." if refuse else None,
        "transaction_number": txn,
        "reference": token.ref,
        "amount": token.amount,
        "merchant_answer": answer.get("body"),
        "merchant_status": answer.get("status_code"),
        "merchant_answer_verified": answer.get("verified", False),
    }


def answer_verified(body: Any, sent: Mapping[str, object], api_key: str) -> bool:
    """The merchant's 200 answer: about this transaction, a known status, signed with it."""
    if not isinstance(body, dict) or body.get("status") not in ANSWER_STATUSES:
        return False
    if any(body.get(name) != sent[name] for name in ("tokenRef", "orderId", "transactionNumber")):
        return False
    return _fields_ok(body, CALLBACK_ANSWER[1]) and verify(body, CALLBACK_ANSWER, api_key)


async def deliver(request: Request, token: Token, fields: dict[str, object]) -> dict[str, Any]:
    """Calls the merchant's callback (three tries), like CMI does after a payment. A 200 whose
    signature does not verify is no answer: it is tried again, like a server error."""
    outbound = request.app.state.outbound
    api_key = _state(request).settings.fatourati_api_key
    last: dict[str, Any] = {}
    for _ in range(3):
        try:
            async with outbound.client() as client:
                response = await client.post(token.callback_url, json=fields)
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            verified = response.status_code == 200 and answer_verified(body, fields, api_key)
            last = {"status_code": response.status_code, "body": body, "verified": verified}
            if verified or 400 <= response.status_code < 500:
                return last
            log.warning(
                "fatourati callback to %s: answer %s not verified", token.callback_url, response.status_code
            )
        except Exception as exc:  # noqa: BLE001 - the network, whatever it throws, is retried
            log.warning("fatourati callback to %s failed: %s", token.callback_url, exc)
            last = {"status_code": None, "body": str(exc), "verified": False}
    return last


@router.post("/payments")
async def pay_api(request: Request) -> Response:
    """For scripts: {"reference","amount","channel"} does what the channel page does."""
    body = await request.json()
    result = await pay(
        request,
        str(body.get("reference", "")),
        None if body.get("amount") is None else str(body.get("amount")),
        str(body.get("channel", "")),
        refuse=bool(body.get("refuse", False)),
    )
    return JSONResponse(result)


@router.get("/", response_class=HTMLResponse, name="fatourati_index")
async def index(request: Request) -> Response:
    state = _state(request)
    now = state.clock()
    tokens = sorted(state.tokens.values(), key=lambda t: t.created_at, reverse=True)
    response: Response = request.app.state.templates.TemplateResponse(
        request,
        "fatourati/index.html",
        {"channels": CHANNELS, "tokens": [(t, t.status(now)) for t in tokens]},
    )
    return response


@router.get("/canal/{code}", response_class=HTMLResponse, name="fatourati_channel")
async def channel_page(request: Request, code: str) -> Response:
    channel = BY_CODE.get(code)
    if channel is None:
        return HTMLResponse("Canal inconnu", status_code=404)
    response: Response = request.app.state.templates.TemplateResponse(
        request, "fatourati/channel.html", {"channel": channel, "result": None, "form": {}}
    )
    return response


@router.post("/canal/{code}", response_class=HTMLResponse)
async def channel_pay(request: Request, code: str) -> Response:
    channel = BY_CODE.get(code)
    if channel is None:
        return HTMLResponse("Canal inconnu", status_code=404)
    form = {k: str(v) for k, v in (await request.form()).items()}
    result = await pay(request, form.get("reference", ""), form.get("amount"), code)
    response: Response = request.app.state.templates.TemplateResponse(
        request, "fatourati/channel.html", {"channel": channel, "result": result, "form": form}
    )
    return response
