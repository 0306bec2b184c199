"""What the imitation bank remembers of each order, and its server-to-server callback.

An order (one ``oid``) is opened by each payment form and keeps every attempt: one transaction per
card tried, each with its signed result fields and the tries of its callback to the merchant. The
callback is a delivery (sandbox/deliveries.py): written with the attempt, tried once before the
browser is redirected, then again with backoff until the merchant answers ``ACTION=POSTAUTH`` or
``APPROVED`` with a 2xx, as CMI does.

An answer that reaches the bank after its 10 s callback timeout is no answer (``Outbound``'s
timeout): the transaction stays authorised only until the merchant captures it through the XML API
(PostAuth, status_api.py). A scripted payment may ask for every answer to be lost that way
(``answers_lost``), so that a test can prove the merchant captures what it did not get to answer.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, Field

from sandbox.cmi_card import signature
from sandbox.cmi_card.rules import ANSWER_ACK, ANSWER_CAPTURE, MOROCCO, Decision, get_field, mask_pan
from sandbox.context import Sandbox
from sandbox.deliveries import Delivery, Purpose, Reply, new_delivery
from sandbox.store import Record, Tx

CALLBACK = "cmi_callback"


class CallbackTry(BaseModel):
    at: datetime
    status_code: int | None
    answer: str | None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        """CMI stops retrying only on a 2xx carrying one of the two acknowledgements."""
        ok_status = self.status_code is not None and 200 <= self.status_code < 300
        return ok_status and (self.answer or "").upper() in (ANSWER_CAPTURE, ANSWER_ACK)


class ApiCapture(BaseModel):
    """The merchant's PostAuth through the XML API: the bank captures an authorisation once."""

    trans_id: str
    at: datetime


LOST_ANSWER = "answer lost: it reached the bank after its 10 s callback timeout"


class Attempt(BaseModel):
    trans_id: str
    created_at: datetime
    masked_pan: str
    decision: Decision
    auth_code: str
    host_ref_num: str
    trx_date: str
    callback_fields: dict[str, str]
    redirect_url: str
    callback_tries: list[CallbackTry] = Field(default_factory=list)
    # pending -> delivered | retrying -> delivered | failed
    callback_state: str = "pending"
    # Every answer of the merchant to this callback arrives too late (a test switch).
    answers_lost: bool = False
    api_capture: ApiCapture | None = None

    @property
    def approved(self) -> bool:
        return self.decision.approved

    @property
    def callback_answer(self) -> str | None:
        return self.callback_tries[-1].answer if self.callback_tries else None

    @property
    def captured_by_callback(self) -> bool:
        return any(t.accepted and (t.answer or "").upper() == ANSWER_CAPTURE for t in self.callback_tries)

    @property
    def captured(self) -> bool:
        """Captured once, by the merchant's answer or by its PostAuth, whichever came first."""
        return self.captured_by_callback or self.api_capture is not None

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
            "captured_by": "callback" if self.captured_by_callback else "api" if self.api_capture else None,
            "answers_lost": self.answers_lost,
            "callback_tries": [
                {"at": t.at.isoformat(), "status_code": t.status_code, "answer": t.answer, "error": t.error}
                for t in self.callback_tries
            ],
        }


class PendingThreeDS(BaseModel):
    """Between the card form and the code: the issuer's answer is known, the code is not yet.

    Only test cards ask for 3-D Secure, so ``pan`` is a published test number; the CVV and expiry
    typed are not kept, only what the issuer made of them.
    """

    pan: str
    issuer_answer: Decision


class Order(Record):
    kind = "cmi_order"

    oid: str
    fields: dict[str, str]
    created_at: datetime
    timeout_seconds: int
    attempts: list[Attempt] = Field(default_factory=list)
    pending_3ds: PendingThreeDS | None = None
    cancelled: bool = False

    def key(self) -> str:
        return self.oid

    @property
    def expires_at(self) -> datetime:
        return self.created_at + timedelta(seconds=self.timeout_seconds)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    @property
    def approved_attempt(self) -> Attempt | None:
        return next((a for a in self.attempts if a.approved), None)

    def attempt(self, trans_id: str) -> Attempt | None:
        return next((a for a in self.attempts if a.trans_id == trans_id), None)

    def status_label(self, now: datetime) -> str:
        if self.approved_attempt is not None:
            return "Payée (capturée)" if self.approved_attempt.captured else "Autorisée"
        if self.cancelled:
            return "Annulée"
        if self.expired(now):
            return "Session expirée"
        return "En attente" if not self.attempts else "Refusée"


class TransId(Record):
    """A transaction number handed out once: the bank never gives two transactions the same."""

    kind = "cmi_trans_id"
    value: str

    def key(self) -> str:
        return self.value


class Refusal(Exception):
    """The order cannot take a payment now; ``title``/``reason`` for the page, ``status`` for HTTP."""

    def __init__(self, status: int, title: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.title, self.reason = status, title, reason


def now_in_morocco(sandbox: Sandbox) -> datetime:
    return sandbox.clock().astimezone(MOROCCO)


def usable_order(tx: Tx, oid: str, now: datetime) -> Order:
    """The order, if a card may still be tried on it (else a Refusal)."""
    order = tx.get(Order, oid)
    if order is None:
        raise Refusal(404, "Commande inconnue", f"Aucune session de paiement pour « {oid} ».")
    if order.approved_attempt is not None:
        raise Refusal(409, "Commande déjà payée", "Cette commande a déjà été réglée.")
    if order.expired(now):
        raise Refusal(
            410, "Session expirée", "Le délai de paiement est dépassé. Retournez sur le site marchand."
        )
    return order


def new_trans_id(tx: Tx, now: datetime) -> str:
    while True:
        letters = "".join(secrets.choice(string.ascii_uppercase) for _ in range(4))
        candidate = f"{now:%y}{now.timetuple().tm_yday:03d}{letters}{secrets.randbelow(10**5):05d}"
        if tx.get(TransId, candidate) is None:
            tx.put(TransId(value=candidate))
            return candidate


def build_result_fields(order: Order, attempt_fields: Mapping[str, str], store_key: str) -> dict[str, str]:
    """The request fields (HASH excepted) plus the result, signed like the request."""
    fields = {k: v for k, v in order.fields.items() if k.lower() != "hash"}
    fields.update(attempt_fields)
    fields["HASH"] = signature.sign(fields, store_key)
    return fields


def record_attempt(
    sandbox: Sandbox, tx: Tx, oid: str, pan: str, decision: Decision, answers_lost: bool = False
) -> tuple[Attempt, Delivery]:
    """One transaction on a still usable order, and its callback, in the caller's transaction: the
    "already paid?" check and the new attempt cannot be split by another payment."""
    now = now_in_morocco(sandbox)
    order = usable_order(tx, oid, now)
    trans_id = new_trans_id(tx, now)
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
    fields = build_result_fields(order, result, sandbox.settings.cmi_store_key)
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
        answers_lost=answers_lost,
    )
    order.attempts.append(attempt)
    order.pending_3ds = None
    tx.put(order)
    delivery = new_delivery(
        tx,
        CALLBACK,
        subject=f"{oid}/{trans_id}",
        url=get_field(order.fields, "CallbackURL") or "",
        body=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        max_tries=sandbox.tuning.cmi_callback_max_tries,
        backoff_seconds=sandbox.tuning.cmi_callback_backoff_seconds,
    )
    return attempt, delivery


def _attempt_of(tx: Tx, delivery: Delivery) -> tuple[Order, Attempt] | None:
    oid, _, trans_id = delivery.subject.rpartition("/")
    order = tx.get(Order, oid)
    attempt = order.attempt(trans_id) if order is not None else None
    return (order, attempt) if order is not None and attempt is not None else None


def _after_callback(tx: Tx, delivery: Delivery, reply: Reply) -> bool:
    found = _attempt_of(tx, delivery)
    if found is None:
        return True
    order, attempt = found
    outcome = CallbackTry(
        at=reply.at.astimezone(MOROCCO),
        status_code=reply.status_code,
        answer=None if reply.text is None else reply.text.strip(),
        error=reply.error,
    )
    if attempt.answers_lost:
        outcome = CallbackTry(at=outcome.at, status_code=None, answer=None, error=LOST_ANSWER)
    attempt.callback_tries.append(outcome)
    attempt.callback_state = "delivered" if outcome.accepted else "retrying"
    tx.put(order)
    return outcome.accepted


def _callback_abandoned(tx: Tx, delivery: Delivery) -> None:
    found = _attempt_of(tx, delivery)
    if found is not None:
        order, attempt = found
        attempt.callback_state = "failed"
        tx.put(order)


CALLBACK_PURPOSE = Purpose(after=_after_callback, abandoned=_callback_abandoned)
