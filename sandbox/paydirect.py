"""An imitation of Banque Populaire PayDirect: contracts, an SMS secret code, the authorization.

The merchant asks for an authorization with the payer's contract number, CIN and phone; the bank
refuses an unknown contract or one that does not match, else sends a secret code by SMS (through
the SMS gateway, sandbox/sms.py) and waits for it. The code follows the OTP rules of
../shared/partners.md: single use, valid ``PAYDIRECT_OTP_TTL_SECONDS``, three tries, compared in
constant time. PayDirect keeps only an HMAC of each code (with a pepper of its own, kept in the
store so that a restart does not invalidate the codes already sent); the code itself exists in
clear only in the SMS, which is the point of an SMS. JSON is signed as sandbox/signed_json.py says.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field

from sandbox import signed_json, sms
from sandbox.context import Sandbox, sandbox_of
from sandbox.runtime import log
from sandbox.signed_json import Unreadable, refused, signed_reply
from sandbox.store import Record, Tx

router = APIRouter(prefix="/paydirect/api")

OTP_LENGTH = 6
OTP_MAX_ATTEMPTS = 3
AUTHORIZATION_CREATE, AUTHORIZATION = "PAYDIRECT_AUTHORIZATION_CREATE", "PAYDIRECT_AUTHORIZATION"
OTP_RESEND, OTP_SENT = "PAYDIRECT_OTP_RESEND", "PAYDIRECT_OTP_SENT"
OTP_VERIFY, OTP_VERDICT = "PAYDIRECT_OTP_VERIFY", "PAYDIRECT_OTP_VERDICT"
HEADER = "X-PayDirect-Signature"
SENDER = "BP-PayDirect"


@dataclass(frozen=True)
class Contract:
    number: str
    cin: str
    phone: str
    holder: str


# Seeded contracts, documented in README.md.
CONTRACTS = (
    Contract("PD1002457", "BE123456", "+212600000001", "SATAA IMPORT EXPORT"),
    Contract("PD1003771", "AB654321", "+212600000002", "ASKA LOGISTIQUE"),
)


class Authorization(Record):
    kind = "paydirect_authorization"

    ref: str
    order_id: str
    amount: str
    contract_number: str
    mandataire: str
    otp_mac: str = ""
    otp_expires: float = 0.0
    attempts_left: int = OTP_MAX_ATTEMPTS
    sends: int = 0
    status: str = "otp_sent"  # otp_sent | authorized
    transaction_id: str | None = None
    authorization_code: str | None = None
    # Verdicts by request id: a retried verification is answered again, not counted twice.
    verdicts: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def key(self) -> str:
        return self.ref

    def secondary(self) -> str:
        return self.order_id

    @property
    def contract(self) -> Contract:
        return next(c for c in CONTRACTS if c.number == self.contract_number)

    def view(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "auth_ref": self.ref,
            "order_id": self.order_id,
            "status": self.status,
            "otp_expires_at": signed_json.iso(self.otp_expires),
            "attempts_left": self.attempts_left,
            "sends": self.sends,
        }
        if self.status == "authorized":
            body |= {"transaction_id": self.transaction_id, "authorization_code": self.authorization_code}
        return body


class Pepper(Record):
    """The bank's secret for the code HMACs: made once per store, never shown."""

    kind = "paydirect_pepper"
    value: str

    def key(self) -> str:
        return "otp"


def _otp_mac(tx: Tx, ref: str, otp: str) -> str:
    pepper = tx.get(Pepper, "otp")
    if pepper is None:
        pepper = Pepper(value=secrets.token_hex(32))
        tx.put(pepper)
    return hmac.new(bytes.fromhex(pepper.value), f"{ref}:{otp}".encode(), hashlib.sha256).hexdigest()


def _new_code(sandbox: Sandbox, tx: Tx, auth: Authorization) -> str:
    """A fresh code for ``auth`` (its HMAC kept, three tries again); the SMS text to send."""
    otp = f"{secrets.randbelow(10**OTP_LENGTH):0{OTP_LENGTH}d}"
    ttl = sandbox.settings.paydirect_otp_ttl_seconds
    auth.otp_mac = _otp_mac(tx, auth.ref, otp)
    auth.otp_expires = sandbox.clock().timestamp() + ttl
    auth.attempts_left = OTP_MAX_ATTEMPTS
    auth.sends += 1
    tx.put(auth)
    return (
        f"Banque Populaire PayDirect : votre code secret est {otp} pour le paiement de {auth.amount} MAD "
        f"(commande {auth.order_id}). Valable {ttl // 60} min. Ne le communiquez a personne."
    )


async def _send_sms(sandbox: Sandbox, to: str, text: str) -> None:
    """Through the SMS gateway over HTTP (``SMS_GATEWAY_URL``), as the bank would; straight into the
    gateway's store if unset or unreachable, so that a code is never lost. The text is never logged."""
    url = sandbox.settings.sms_gateway_url.rstrip("/")
    if url:
        try:
            reply = await sandbox.outbound.post(
                f"{url}/messages", json={"to": to, "text": text, "sender": SENDER}
            )
            if reply.status_code < 300:
                return
            log.warning("PayDirect sandbox: SMS gateway answered %s; delivered in-process", reply.status_code)
        except Exception as exc:  # the gateway is part of the sandbox: fall back rather than lose the code
            log.warning(
                "PayDirect sandbox: SMS gateway unreachable (%s); delivered in-process", type(exc).__name__
            )
    await sms.receive(sandbox, to, text, SENDER)


def _reply(sandbox: Sandbox, body: dict[str, Any], label: str, status_code: int = 200) -> Response:
    return signed_reply(body, sandbox.settings.paydirect_secret_key, label, HEADER, status_code)


async def _signed_body(request: Request, label: str) -> dict[str, Any] | None:
    key = sandbox_of(request).settings.paydirect_secret_key
    return signed_json.signed_json(await request.body(), request.headers.get(HEADER, ""), key, label)


@router.post("/authorizations", name="paydirect_start")
async def paydirect_start(request: Request) -> Response:
    sandbox = sandbox_of(request)
    raw = await request.body()
    try:
        data = signed_json.json_object(raw)
    except Unreadable:
        return refused(400, "invalid_request", "Corps JSON attendu.")
    order_id = str(data.get("order_id", ""))
    amount = signed_json.amount(data.get("amount"))
    if not order_id or amount is None:
        return refused(422, "invalid_request", "Demande invalide.")
    key = sandbox.settings.paydirect_secret_key
    if not signed_json.signature_ok(raw, request.headers.get(HEADER, ""), key, AUTHORIZATION_CREATE):
        return refused(401, "bad_signature", "Signature invalide.")
    existing = await sandbox.store.call(lambda tx: tx.find(Authorization, order_id))
    if existing:
        return _reply(sandbox, {"result": "otp_sent", **existing[0].view()}, AUTHORIZATION)
    number = str(data.get("contract_number", "")).strip().upper()
    contract = next((c for c in CONTRACTS if c.number == number), None)
    if contract is None:
        return refused(422, "unknown_contract", "Numéro de contrat PayDirect inconnu.")
    if not hmac.compare_digest(contract.cin, str(data.get("cin", "")).strip().upper()):
        return refused(422, "contract_mismatch", "Le CIN ne correspond pas au contrat PayDirect.")
    if sms.normalize_phone(str(data.get("phone", ""))) != contract.phone:
        return refused(422, "phone_mismatch", "Le numéro de téléphone n'est pas celui du contrat.")

    def open_authorization(tx: Tx) -> tuple[Authorization, str | None]:
        found = tx.find(Authorization, order_id)
        if found:  # the same request, twice at once: one authorization, one code
            return found[0], None
        auth = Authorization(
            ref="PDA" + secrets.token_hex(6).upper(),
            order_id=order_id,
            amount=amount,
            contract_number=contract.number,
            mandataire=str(data.get("mandataire", ""))[:120],
        )
        return auth, _new_code(sandbox, tx, auth)

    auth, text = await sandbox.store.call(open_authorization)
    if text is None:
        return _reply(sandbox, {"result": "otp_sent", **auth.view()}, AUTHORIZATION)
    await _send_sms(sandbox, contract.phone, text)
    return _reply(sandbox, {"result": "otp_sent", **auth.view()}, AUTHORIZATION, 201)


@router.post("/authorizations/{ref}/otp", name="paydirect_resend")
async def paydirect_resend(request: Request, ref: str) -> Response:
    sandbox = sandbox_of(request)
    if await _signed_body(request, OTP_RESEND) is None:
        return refused(401, "bad_signature", "Signature invalide.")

    def resend(tx: Tx) -> tuple[Authorization | None, str | None]:
        auth = tx.get(Authorization, ref)
        if auth is None or auth.status == "authorized":
            return auth, None
        return auth, _new_code(sandbox, tx, auth)

    auth, text = await sandbox.store.call(resend)
    if auth is None:
        return refused(404, "unknown_authorization", "Autorisation inconnue.")
    if text is None:
        return refused(409, "already_authorized", "Paiement déjà autorisé.")
    await _send_sms(sandbox, auth.contract.phone, text)
    return _reply(sandbox, {"result": "otp_sent", **auth.view()}, OTP_SENT)


def verdict_on(tx: Tx, ref: str, request_id: str, otp: str, now: float) -> dict[str, Any] | None:
    """The bank's verdict on one typed code, decided and recorded in one transaction."""
    auth = tx.get(Authorization, ref)
    if auth is None:
        return None
    if request_id and request_id in auth.verdicts:
        return auth.verdicts[request_id]
    if auth.status == "authorized":
        verdict: dict[str, Any] = {"result": "already_authorized", **auth.view()}
    elif auth.attempts_left <= 0:
        verdict = {"result": "dead", **auth.view()}
    elif now > auth.otp_expires:
        verdict = {"result": "expired", **auth.view()}
    elif hmac.compare_digest(_otp_mac(tx, auth.ref, otp), auth.otp_mac):
        auth.status = "authorized"
        auth.otp_mac = ""  # single use
        auth.transaction_id = "BP" + secrets.token_hex(5).upper()
        auth.authorization_code = f"{secrets.randbelow(10**6):06d}"
        verdict = {"result": "authorized", **auth.view()}
    else:
        auth.attempts_left -= 1
        verdict = {"result": "wrong" if auth.attempts_left > 0 else "dead", **auth.view()}
    # The verdict names the request it answers: it cannot be replayed as another request's.
    verdict["request_id"] = request_id
    if request_id:
        auth.verdicts[request_id] = verdict
    tx.put(auth)
    return verdict


@router.post("/authorizations/{ref}/verify", name="paydirect_verify")
async def paydirect_verify(request: Request, ref: str) -> Response:
    sandbox = sandbox_of(request)
    data = await _signed_body(request, OTP_VERIFY)
    if data is None:
        return refused(401, "bad_signature", "Signature invalide.")
    request_id, otp = str(data.get("request_id", "")), str(data.get("otp", ""))
    verdict = await sandbox.store.call(
        lambda tx: verdict_on(tx, ref, request_id, otp, sandbox.clock().timestamp())
    )
    if verdict is None:
        return refused(404, "unknown_authorization", "Autorisation inconnue.")
    return _reply(sandbox, verdict, OTP_VERDICT)
