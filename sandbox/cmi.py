"""An imitation of CMI's hosted payment page (3D_PAY_HOSTING), reached by us over HTTP only.

It follows ../shared/partners.md to the letter so that pointing the platform at the real gateway
is a configuration change: same form fields, same HASH ver3, same server-to-server callback and
retries, same plain-text answers, same XML status query. Card numbers are only typed here, as
with the real gateway, which keeps them off our servers.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import string
import xml.etree.ElementTree as ET  # noqa: S405 - only to build and read small trusted-shape documents
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from portnet.settings import Settings
from sandbox import cmi_hash
from sandbox.runtime import Background, Outbound, log

router = APIRouter(prefix="/cmi")

CURRENCY_MAD = "504"
STORE_TYPE = "3D_PAY_HOSTING"
TRAN_TYPES = frozenset({"PreAuth", "Auth"})
REQUIRED_FIELDS = (
    "clientid",
    "oid",
    "amount",
    "currency",
    "okUrl",
    "failUrl",
    "CallbackURL",
    "storetype",
    "TranType",
    "rnd",
    "hashAlgorithm",
    "HASH",
)
SESSION_TIMEOUT_RANGE = (30, 2700)
_AMOUNT = re.compile(r"^\d{1,13}\.\d{2}$")

ANSWER_CAPTURE = "ACTION=POSTAUTH"
ANSWER_ACK = "APPROVED"
ANSWER_FAILURE = "FAILURE"


def _morocco() -> tzinfo:
    try:
        return ZoneInfo("Africa/Casablanca")
    except ZoneInfoNotFoundError:  # a slim container without tzdata: the dates stay plausible
        return UTC


MOROCCO = _morocco()


@dataclass(frozen=True)
class SandboxCard:
    brand: str
    cvc: str
    three_d_secure: bool


TEST_CARDS: dict[str, SandboxCard] = {
    "4000000000000010": SandboxCard("Visa", "000", False),
    "5453010000066100": SandboxCard("MasterCard", "000", False),
    "5191630100004896": SandboxCard("MasterCard", "000", True),
}
THREE_DS_CODE = "123"


@dataclass(frozen=True)
class Decision:
    proc_return_code: str
    response: str
    err_msg: str
    md_status: str

    @property
    def approved(self) -> bool:
        return self.proc_return_code == "00"


APPROVED = Decision("00", "Approved", "", "1")
DECLINED = Decision("05", "Declined", "Transaction refusée", "1")
EXPIRED_CARD = Decision("54", "Declined", "Carte expirée", "1")
WRONG_CVC = Decision("82", "Declined", "CVC incorrect", "1")
THREE_DS_FAILED = Decision("05", "Declined", "Authentification 3-D Secure échouée", "0")


@dataclass
class CallbackTry:
    at: datetime
    status_code: int | None
    answer: str | None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        """CMI stops retrying only on a 2xx carrying one of the two acknowledgements."""
        ok_status = self.status_code is not None and 200 <= self.status_code < 300
        return ok_status and (self.answer or "").upper() in (ANSWER_CAPTURE, ANSWER_ACK)


@dataclass
class Attempt:
    trans_id: str
    created_at: datetime
    masked_pan: str
    decision: Decision
    auth_code: str
    host_ref_num: str
    trx_date: str
    callback_fields: dict[str, str]
    redirect_url: str
    callback_tries: list[CallbackTry] = field(default_factory=list)
    # pending -> delivered | retrying -> delivered | failed
    callback_state: str = "pending"

    @property
    def approved(self) -> bool:
        return self.decision.approved

    @property
    def callback_answer(self) -> str | None:
        return self.callback_tries[-1].answer if self.callback_tries else None

    @property
    def captured(self) -> bool:
        return any(t.accepted and (t.answer or "").upper() == ANSWER_CAPTURE for t in self.callback_tries)

    def as_json(self) -> dict[str, Any]:
        return {
            "trans_id": self.trans_id,
            "created_at": self.created_at.isoformat(),
            "masked_pan": self.masked_pan,
            "result": "approved" if self.approved else "declined",
            "response": self.decision.response,
            "proc_return_code": self.decision.proc_return_code,
            "err_msg": self.decision.err_msg,
            "md_status": self.decision.md_status,
            "auth_code": self.auth_code,
            "host_ref_num": self.host_ref_num,
            "callback_state": self.callback_state,
            "callback_answer": self.callback_answer,
            "captured": self.captured,
            "callback_tries": [
                {
                    "at": t.at.isoformat(),
                    "status_code": t.status_code,
                    "answer": t.answer,
                    "error": t.error,
                }
                for t in self.callback_tries
            ],
        }


@dataclass
class PendingThreeDS:
    pan: str
    expiry: str
    cvv: str


@dataclass
class Order:
    oid: str
    fields: dict[str, str]
    created_at: datetime
    timeout_seconds: int
    attempts: list[Attempt] = field(default_factory=list)
    pending_3ds: PendingThreeDS | None = None
    cancelled: bool = False

    @property
    def expires_at(self) -> datetime:
        return self.created_at + timedelta(seconds=self.timeout_seconds)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    @property
    def approved_attempt(self) -> Attempt | None:
        return next((a for a in self.attempts if a.approved), None)

    def status_label(self, now: datetime) -> str:
        if self.approved_attempt is not None:
            return "Payée (capturée)" if self.approved_attempt.captured else "Autorisée"
        if self.cancelled:
            return "Annulée"
        if self.expired(now):
            return "Session expirée"
        return "En attente" if not self.attempts else "Refusée"


def _default_clock() -> datetime:
    return datetime.now(MOROCCO)


@dataclass
class CmiState:
    """Everything the imitation bank remembers; tests may swap ``clock`` or shorten the backoff."""

    settings: Settings
    orders: dict[str, Order] = field(default_factory=dict)
    clock: Callable[[], datetime] = _default_clock
    callback_max_tries: int = 3
    callback_backoff_seconds: float = 0.5
    trans_ids: set[str] = field(default_factory=set)

    def new_trans_id(self) -> str:
        now = self.clock()
        while True:
            letters = "".join(secrets.choice(string.ascii_uppercase) for _ in range(4))
            candidate = f"{now:%y}{now.timetuple().tm_yday:03d}{letters}{secrets.randbelow(10**5):05d}"
            if candidate not in self.trans_ids:
                self.trans_ids.add(candidate)
                return candidate


# --- pure rules -------------------------------------------------------------------------------


def get_field(fields: Mapping[str, str], name: str) -> str | None:
    """CMI treats field names case-insensitively."""
    lowered = name.lower()
    return next((v for k, v in fields.items() if k.lower() == lowered), None)


def validate_request(fields: Mapping[str, str], settings: Settings) -> list[str]:
    """Every reason to refuse the form, in French, so a developer sees all mistakes at once."""
    errors: list[str] = []
    hash_value = get_field(fields, "HASH")
    if not hash_value:
        errors.append("Le champ HASH est manquant.")
    elif not cmi_hash.check(fields, settings.cmi_store_key):
        errors.append("Le HASH est invalide (signature ver3 non conforme).")
    for name in REQUIRED_FIELDS:
        if name != "HASH" and not (get_field(fields, name) or "").strip():
            errors.append(f"Le champ obligatoire « {name} » est manquant.")

    def value(name: str) -> str:
        return (get_field(fields, name) or "").strip()

    if value("clientid") and value("clientid") != settings.cmi_client_id:
        errors.append("Identifiant marchand (clientid) inconnu.")
    amount = value("amount")
    if amount and (not _AMOUNT.match(amount) or Decimal(amount) <= 0):
        errors.append("Montant invalide : attendu un nombre positif avec deux décimales (ex. 123.45).")
    if value("currency") and value("currency") != CURRENCY_MAD:
        errors.append("Devise non acceptée : seul le dirham (504) est accepté.")
    if value("storetype") and value("storetype") != STORE_TYPE:
        errors.append(f"Type de boutique (storetype) non supporté : attendu {STORE_TYPE}.")
    if value("TranType") and value("TranType") not in TRAN_TYPES:
        errors.append("Type de transaction (TranType) non supporté.")
    if value("hashAlgorithm") and value("hashAlgorithm") != "ver3":
        errors.append("Algorithme de hachage non supporté : attendu ver3.")
    for name in ("okUrl", "failUrl", "CallbackURL", "shopurl"):
        url = value(name)
        if url and not url.lower().startswith(("http://", "https://")):
            errors.append(f"L'adresse « {name} » doit commencer par http:// ou https://.")
    timeout = value("sessionTimeout")
    if timeout:
        low, high = SESSION_TIMEOUT_RANGE
        if not timeout.isdigit() or not low <= int(timeout) <= high:
            errors.append(f"sessionTimeout doit être un nombre de secondes entre {low} et {high}.")
    return errors


def normalize_pan(pan: str) -> str:
    return re.sub(r"[\s-]", "", pan)


def parse_expiry(text: str) -> tuple[int, int] | None:
    """(year, month) from ``MM/YY``, ``MM/YYYY`` or ``MMYY``; None if unreadable."""
    match = re.fullmatch(r"\s*(\d{1,2})\s*[/-]?\s*(\d{2}|\d{4})\s*", text)
    if not match:
        return None
    month, year = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        return None
    return (2000 + year if year < 100 else year, month)


def card_input_errors(pan: str, expiry: str, cvv: str) -> list[str]:
    """What the page refuses before anything reaches the bank (no attempt, no callback)."""
    errors = []
    if not re.fullmatch(r"\d{12,19}", normalize_pan(pan)):
        errors.append("Numéro de carte invalide (12 à 19 chiffres).")
    if parse_expiry(expiry) is None:
        errors.append("Date d'expiration invalide (format MM/AA).")
    if not re.fullmatch(r"\d{3,4}", cvv.strip()):
        errors.append("Cryptogramme (CVV) invalide (3 ou 4 chiffres).")
    return errors


def needs_three_d_secure(pan: str) -> bool:
    card = TEST_CARDS.get(normalize_pan(pan))
    return card is not None and card.three_d_secure


def authorize(pan: str, expiry: str, cvv: str, today: datetime) -> Decision:
    """The issuer's answer once 3-D Secure, if any, has passed."""
    card = TEST_CARDS.get(normalize_pan(pan))
    if card is None:
        return DECLINED
    parsed = parse_expiry(expiry)
    if parsed is None or parsed < (today.year, today.month):
        return EXPIRED_CARD
    if not hmac.compare_digest(cvv.strip().encode(), card.cvc.encode()):
        return WRONG_CVC
    return APPROVED


def three_d_secure_decision(pan: str, expiry: str, cvv: str, code: str | None, today: datetime) -> Decision:
    if not hmac.compare_digest((code or "").strip().encode(), THREE_DS_CODE.encode()):
        return THREE_DS_FAILED
    return authorize(pan, expiry, cvv, today)


def mask_pan(pan: str) -> str:
    digits = normalize_pan(pan)
    return f"{digits[:6]}***{digits[-4:]}"


def build_result_fields(order: Order, attempt_fields: Mapping[str, str], store_key: str) -> dict[str, str]:
    """The request fields (HASH excepted) plus the result, signed like the request."""
    fields = {k: v for k, v in order.fields.items() if k.lower() != "hash"}
    fields.update(attempt_fields)
    fields["HASH"] = cmi_hash.sign(fields, store_key)
    return fields


# --- attempts and callbacks -------------------------------------------------------------------


def _state(request: Request) -> CmiState:
    state: CmiState = request.app.state.cmi
    return state


def record_attempt(state: CmiState, order: Order, pan: str, decision: Decision) -> Attempt:
    """Synchronous on purpose: no await between the "already paid?" check and this append."""
    now = state.clock()
    trans_id = state.new_trans_id()
    auth_code = f"{secrets.randbelow(10**6):06d}" if decision.approved else ""
    host_ref_num = f"{now:%y}{now.timetuple().tm_yday:03d}{secrets.randbelow(10**7):07d}"
    trx_date = now.strftime("%Y%m%d %H:%M:%S")
    masked = mask_pan(pan)
    result = {
        "ProcReturnCode": decision.proc_return_code,
        "Response": decision.response,
        "AuthCode": auth_code,
        "TransId": trans_id,
        "HostRefNum": host_ref_num,
        "ErrMsg": decision.err_msg,
        "mdStatus": decision.md_status,
        "EXTRA.TRXDATE": trx_date,
        "MaskedPan": masked,
    }
    fields = build_result_fields(order, result, state.settings.cmi_store_key)
    target = "okUrl" if decision.approved else "failUrl"
    attempt = Attempt(
        trans_id=trans_id,
        created_at=now,
        masked_pan=masked,
        decision=decision,
        auth_code=auth_code,
        host_ref_num=host_ref_num,
        trx_date=trx_date,
        callback_fields=fields,
        redirect_url=get_field(order.fields, target) or "",
    )
    order.attempts.append(attempt)
    order.pending_3ds = None
    return attempt


async def _call_back_once(outbound: Outbound, url: str, attempt: Attempt) -> CallbackTry:
    at = datetime.now(MOROCCO)
    try:
        async with outbound.client() as client:
            reply = await client.post(url, data=attempt.callback_fields)
        outcome = CallbackTry(at=at, status_code=reply.status_code, answer=reply.text.strip())
    except Exception as exc:  # whatever the merchant's server does, the bank keeps going
        outcome = CallbackTry(at=at, status_code=None, answer=None, error=f"{type(exc).__name__}: {exc}")
    attempt.callback_tries.append(outcome)
    return outcome


async def _retry_callback(state: CmiState, outbound: Outbound, url: str, attempt: Attempt) -> None:
    for number in range(1, state.callback_max_tries):
        await asyncio.sleep(state.callback_backoff_seconds * 2 ** (number - 1))
        if (await _call_back_once(outbound, url, attempt)).accepted:
            attempt.callback_state = "delivered"
            return
    attempt.callback_state = "failed"
    log.warning(
        "CMI sandbox: callback for %s abandoned after %d tries", attempt.trans_id, len(attempt.callback_tries)
    )


async def notify_merchant(
    request: Request, order: Order, attempt: Attempt, wait_for_retries: bool = False
) -> None:
    """First try inline (the browser is redirected after it, as with CMI); retries in the background."""
    state = _state(request)
    outbound: Outbound = request.app.state.outbound
    background: Background = request.app.state.background
    url = get_field(order.fields, "CallbackURL") or ""
    if (await _call_back_once(outbound, url, attempt)).accepted:
        attempt.callback_state = "delivered"
        return
    if state.callback_max_tries <= 1:
        attempt.callback_state = "failed"
        return
    attempt.callback_state = "retrying"
    retries = _retry_callback(state, outbound, url, attempt)
    if wait_for_retries:
        await retries
    else:
        background.spawn(retries, name=f"cmi-callback-{attempt.trans_id}")


# --- pages ------------------------------------------------------------------------------------


def _render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, name, context, status_code=status_code
    )
    return response


def _error_page(request: Request, title: str, errors: list[str], status_code: int) -> HTMLResponse:
    return _render(request, "cmi/error.html", {"title": title, "errors": errors}, status_code)


def _card_page(
    request: Request, order: Order, errors: list[str] | None = None, status_code: int = 200
) -> HTMLResponse:
    return _render(
        request,
        "cmi/card.html",
        {
            "order": order,
            "fields": order.fields,
            "amount": get_field(order.fields, "amount"),
            "customer": get_field(order.fields, "BillToName") or "",
            "merchant_id": get_field(order.fields, "clientid"),
            "errors": errors or [],
            "test_cards": TEST_CARDS,
            "remaining_minutes": max(
                0, int((order.expires_at - _state(request).clock()).total_seconds() // 60)
            ),
        },
        status_code,
    )


def _redirect_page(request: Request, order: Order, attempt: Attempt) -> HTMLResponse:
    # AutoRedirect=false asks CMI to leave the result on screen until the payer clicks.
    auto_redirect = (get_field(order.fields, "AutoRedirect") or "true").strip().lower() != "false"
    return _render(request, "cmi/redirect.html", {"attempt": attempt, "auto_redirect": auto_redirect})


def _usable_order(request: Request, oid: str) -> tuple[Order | None, HTMLResponse | None]:
    order = _state(request).orders.get(oid)
    if order is None:
        return None, _error_page(
            request, "Commande inconnue", [f"Aucune session de paiement pour « {oid} »."], 404
        )
    if order.approved_attempt is not None:
        return None, _error_page(request, "Commande déjà payée", ["Cette commande a déjà été réglée."], 409)
    if order.expired(_state(request).clock()):
        return None, _error_page(
            request,
            "Session expirée",
            ["Le délai de paiement est dépassé. Retournez sur le site marchand."],
            410,
        )
    return order, None


@router.get("/", response_class=HTMLResponse, name="cmi_index")
async def transactions_page(request: Request) -> HTMLResponse:
    state = _state(request)
    orders = sorted(state.orders.values(), key=lambda o: o.created_at, reverse=True)
    return _render(request, "cmi/index.html", {"orders": orders, "now": state.clock()})


@router.post("/fim/est3Dgate", response_class=HTMLResponse, name="cmi_gate")
async def gateway(request: Request) -> HTMLResponse:
    state = _state(request)
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
    errors += validate_request(fields, state.settings)
    if errors:
        return _error_page(request, "Requête de paiement refusée", errors, 400)
    oid = (get_field(fields, "oid") or "").strip()
    existing = state.orders.get(oid)
    if existing is not None and existing.approved_attempt is not None:
        return _error_page(request, "Commande déjà payée", ["Cette commande a déjà été réglée."], 409)
    timeout = get_field(fields, "sessionTimeout")
    order = Order(
        oid=oid,
        fields=fields,
        created_at=state.clock(),
        timeout_seconds=int(timeout) if timeout else state.settings.cmi_session_timeout_seconds,
        # A new form for the same order opens a new session but keeps the earlier declined attempts.
        attempts=existing.attempts if existing is not None else [],
    )
    state.orders[oid] = order
    return _card_page(request, order)


@router.post("/fim/pay", response_class=HTMLResponse, name="cmi_pay")
async def pay(request: Request) -> HTMLResponse:
    form = await request.form()
    oid, pan, expiry, cvv = (str(form.get(k) or "") for k in ("oid", "pan", "expiry", "cvv"))
    order, refusal = _usable_order(request, oid)
    if order is None:
        assert refusal is not None
        return refusal
    errors = card_input_errors(pan, expiry, cvv)
    if errors:
        return _card_page(request, order, errors, 400)
    if needs_three_d_secure(pan):
        order.pending_3ds = PendingThreeDS(pan=normalize_pan(pan), expiry=expiry, cvv=cvv)
        return _render(
            request, "cmi/three_ds.html", {"order": order, "masked_pan": mask_pan(pan), "error": None}
        )
    attempt = record_attempt(
        _state(request), order, pan, authorize(pan, expiry, cvv, _state(request).clock())
    )
    await notify_merchant(request, order, attempt)
    return _redirect_page(request, order, attempt)


@router.post("/fim/3ds", response_class=HTMLResponse, name="cmi_3ds")
async def three_d_secure(request: Request) -> HTMLResponse:
    form = await request.form()
    oid, code = str(form.get("oid") or ""), str(form.get("code") or "")
    order, refusal = _usable_order(request, oid)
    if order is None:
        assert refusal is not None
        return refusal
    pending = order.pending_3ds
    if pending is None:
        return _error_page(request, "Authentification impossible", ["Aucune authentification en cours."], 400)
    state = _state(request)
    decision = three_d_secure_decision(pending.pan, pending.expiry, pending.cvv, code, state.clock())
    attempt = record_attempt(state, order, pending.pan, decision)
    await notify_merchant(request, order, attempt)
    return _redirect_page(request, order, attempt)


@router.get("/fim/cancel", name="cmi_cancel", response_model=None)
async def cancel(request: Request, oid: str = "") -> Response:
    order = _state(request).orders.get(oid)
    if order is None:
        return _error_page(request, "Commande inconnue", [f"Aucune session de paiement pour « {oid} »."], 404)
    if order.approved_attempt is None:
        order.cancelled = True
        order.pending_3ds = None
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


@router.post("/card-payments", name="cmi_card_payments")
async def card_payment(request: Request, payment: CardPayment) -> JSONResponse:
    state = _state(request)
    order = state.orders.get(payment.oid)
    if order is None:
        return JSONResponse({"detail": f"unknown oid {payment.oid!r}: post the payment form first"}, 404)
    if order.approved_attempt is not None:
        return JSONResponse({"detail": "Commande déjà payée"}, 409)
    if order.expired(state.clock()):
        return JSONResponse({"detail": "Session expirée"}, 410)
    errors = card_input_errors(payment.pan, payment.expiry, payment.cvv)
    if errors:
        return JSONResponse({"detail": errors}, 422)
    now = state.clock()
    if needs_three_d_secure(payment.pan):
        decision = three_d_secure_decision(
            payment.pan, payment.expiry, payment.cvv, payment.three_ds_code, now
        )
    else:
        decision = authorize(payment.pan, payment.expiry, payment.cvv, now)
    attempt = record_attempt(state, order, payment.pan, decision)
    await notify_merchant(request, order, attempt, wait_for_retries=payment.wait_for_retries)
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
            "redirect": {"url": attempt.redirect_url, "fields": attempt.callback_fields},
        }
    )


@router.get("/orders/{oid}", name="cmi_order")
async def order_json(request: Request, oid: str) -> JSONResponse:
    """What the bank knows about an order, for tests and for people debugging a callback."""
    state = _state(request)
    order = state.orders.get(oid)
    if order is None:
        return JSONResponse({"detail": f"unknown oid {oid!r}"}, 404)
    return JSONResponse(
        {
            "oid": order.oid,
            "fields": order.fields,
            "created_at": order.created_at.isoformat(),
            "expires_at": order.expires_at.isoformat(),
            "status": order.status_label(state.clock()),
            "cancelled": order.cancelled,
            "attempts": [a.as_json() for a in order.attempts],
        }
    )


# --- status query (CC5Request ORDERHISTORY) ---------------------------------------------------


def _xml_response(values: Mapping[str, str], extra: Mapping[str, str], status_code: int = 200) -> Response:
    root = ET.Element("CC5Response")
    for name, text in values.items():
        ET.SubElement(root, name).text = text
    extra_node = ET.SubElement(root, "Extra")
    for name, text in extra.items():
        ET.SubElement(extra_node, name).text = text
    body = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
    return Response(body, status_code=status_code, media_type="application/xml")


def _xml_error(message: str, order_id: str = "", status_code: int = 200) -> Response:
    values = {"OrderId": order_id, "Response": "Error", "ProcReturnCode": "99", "ErrMsg": message}
    return _xml_response(values, {}, status_code)


def _credentials_ok(settings: Settings, name: str, password: str) -> bool:
    """Settings has no API user yet: if ``cmi_api_name``/``cmi_api_password`` appear, they are enforced."""
    expected_name = str(getattr(settings, "cmi_api_name", "") or "")
    expected_password = str(getattr(settings, "cmi_api_password", "") or "")
    if not name or not password:
        return False
    name_ok = not expected_name or hmac.compare_digest(name.encode(), expected_name.encode())
    password_ok = not expected_password or hmac.compare_digest(password.encode(), expected_password.encode())
    return name_ok and password_ok


def _trans_stat(attempt: Attempt) -> str:
    if not attempt.approved:
        return "D"
    return "C" if attempt.captured else "A"


@router.post("/fim/api", name="cmi_api")
async def status_query(request: Request) -> Response:
    state = _state(request)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raw = str((await request.form()).get("DATA") or "").encode()  # Nestpay also accepts DATA=<xml>
    else:
        raw = await request.body()
    if b"<!" in raw:  # no DTD, no entities: the stdlib parser would expand them
        return _xml_error("Document XML refusé (DTD interdite).", status_code=400)
    try:
        root = ET.fromstring(raw)  # noqa: S314 - DTDs are refused above
    except ET.ParseError:
        return _xml_error("Requête XML illisible.", status_code=400)
    if root.tag != "CC5Request":
        return _xml_error("Élément racine CC5Request attendu.", status_code=400)

    def text(path: str) -> str:
        return (root.findtext(path) or "").strip()

    order_id = text("OrderId")
    if not _credentials_ok(state.settings, text("Name"), text("Password")):
        return _xml_error("Identifiants API invalides.", order_id)
    if text("ClientId") != state.settings.cmi_client_id:
        return _xml_error("ClientId inconnu.", order_id)
    if text("Extra/ORDERHISTORY").upper() != "QUERY":
        return _xml_error("Seule la requête ORDERHISTORY=QUERY est prise en charge.", order_id)
    order = state.orders.get(order_id)
    if order is None or not order_id:
        return _xml_error("Commande introuvable.", order_id)
    if not order.attempts:
        values = {
            "OrderId": order_id,
            "Response": "Error",
            "ProcReturnCode": "99",
            "ErrMsg": "Aucune transaction.",
        }
        return _xml_response(values, {"TRXCOUNT": "0"})
    summary = order.approved_attempt or order.attempts[-1]
    values = {
        "OrderId": order_id,
        "Response": summary.decision.response,
        "AuthCode": summary.auth_code,
        "HostRefNum": summary.host_ref_num,
        "ProcReturnCode": summary.decision.proc_return_code,
        "TransId": summary.trans_id,
        "ErrMsg": summary.decision.err_msg,
    }
    extra = {
        "TRXCOUNT": str(len(order.attempts)),
        "TRANS_STAT": _trans_stat(summary),
        "TRX_DATE": summary.trx_date,
        "ORIG_TRANS_AMT": get_field(order.fields, "amount") or "",
        "CAPTURE_AMT": (get_field(order.fields, "amount") or "") if summary.captured else "0.00",
    }
    for number, attempt in enumerate(order.attempts, start=1):
        # Nestpay lists each transaction as tab-separated columns.
        extra[f"TRX{number}"] = "\t".join(
            (
                attempt.trans_id,
                attempt.decision.response,
                attempt.decision.proc_return_code,
                get_field(order.fields, "amount") or "",
                attempt.trx_date,
                attempt.auth_code,
                _trans_stat(attempt),
            )
        )
    return _xml_response(values, extra)
