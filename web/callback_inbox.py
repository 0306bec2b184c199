"""The callback inbox: every partner's call to us (CMI, Fatourati, Amanpay, emitters) kept, judged,
deduplicated, through this one module.

Each callback route (web/channels/<channel>.py, web/api/emitter_acks.py) does the same four steps:
``read_capped`` (the body, capped), ``record`` (a ``partner_callback`` row before anything is judged),
its own checks (fields, then signature, then our state), and ``judge`` (the verdict and the answer,
written on that row; with a dedupe key, ``claim`` makes one delivery of a partner event the one that
processes it, the others replaying its answer). The card callback, the one a payer waits on, folds
them: ``record`` with the verdict when fields or signature are refused, else ``arrive`` (the payment
read, the row and its claim in one transaction), then ``judge``.

The body as we keep it: read with a cap, card fields taken out, and its hash.

Callbacks come from the internet unauthenticated until their signature is checked, so the body is
streamed and reading stops past ``BODY_CAP`` (16 KB; the largest genuine callback, CMI's, is about
2 KB): a longer body is refused with 413 and only its first 16 KB are kept. ``Content-Length`` is not
trusted: it may be absent (chunked) or lie. Server-side, uvicorn discards what we did not read once
the answer is sent, without holding it.

What is kept is the body as received, unless it carries a card field (``NEVER_STORED``): then that
field is taken out (or, if the body cannot be parsed, every digit is masked), so that no card
number or code is ever written, not even hashed. ``sha256`` is the SHA-256 of exactly the kept bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from temporalio.service import RPCError

from portnet import metrics
from portnet.db import get_engine
from portnet.i18n import N_
from portnet.models import PartnerCallback, Payment, utcnow
from portnet.protocols.fields import PAYMENT_ID
from portnet.statuses import PaymentStatus
from web.attempts import forget_view
from workflows.payment import PaymentWorkflow

log = logging.getLogger("portnet.callbacks")

BODY_CAP = 16 * 1024
# Fields that identify the payer's card or secrets and are never kept, even if a partner sent them.
NEVER_STORED = frozenset(
    {"pan", "cv2", "cvv", "ecom_payment_card_expdate_month", "ecom_payment_card_expdate_year"}
)
_CARD_NAME = re.compile(
    r"(?<![a-z0-9_])(?:pan|cv2|cvv|ecom_payment_card_expdate_month|ecom_payment_card_expdate_year)(?![a-z0-9_])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RawBody:
    kept: bytes  # what we store: at most BODY_CAP bytes, card fields out
    sha256: str  # of ``kept``
    truncated: bool  # the body went past BODY_CAP: refused with 413
    scrubbed: bool  # a card field was taken out
    received: bytes  # the bytes read (at most BODY_CAP), to parse; never stored as such


async def read_capped(request: Request, cap: int = BODY_CAP) -> RawBody:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                break
    except ClientDisconnect:
        pass
    received = b"".join(chunks)[:cap]
    kept = without_card_fields(received)
    return RawBody(
        kept=kept,
        sha256=hashlib.sha256(kept).hexdigest(),
        truncated=size > cap,
        scrubbed=kept != received,
        received=received,
    )


def _drop_card_keys(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in NEVER_STORED:
                changed = True
                continue
            out[key], inner = _drop_card_keys(item)
            changed = changed or inner
        return out, changed
    if isinstance(value, list):
        items = [_drop_card_keys(item) for item in value]
        return [item for item, _ in items], any(changed for _, changed in items)
    return value, False


def without_card_fields(body: bytes) -> bytes:
    text = body.decode("utf-8", errors="replace")
    if not _CARD_NAME.search(unquote_plus(text)) and not _CARD_NAME.search(_json_unescaped(text)):
        return body
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict | list):
        cleaned, changed = _drop_card_keys(data)
        return json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")).encode() if changed else body
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        pairs = None
    if pairs is not None:
        kept = [(k, v) for k, v in pairs if k.lower() not in NEVER_STORED]
        return urlencode(kept).encode() if len(kept) != len(pairs) else body
    # Neither JSON nor a form (cut at the cap, or garbage) and a card field's name in it.
    return re.sub(rb"[0-9]", b"#", body)


def _json_unescaped(text: str) -> str:
    """``\\u0070an`` is ``pan`` to a JSON parser: look at names as the parser would."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


# ------------------------------------------------------------------- record, claim, judge


def _row(
    partner: str,
    payload: dict[str, str],
    payment_id: str | None,
    raw: RawBody | None,
    verdict: str,
    answer: str | None,
    dedupe_key: str | None = None,
) -> PartnerCallback:
    """The call as kept. Only a well-formed order id is filed as the payment's."""
    clean = {k: v for k, v in payload.items() if k.lower() not in NEVER_STORED}
    return PartnerCallback(
        partner=partner,
        payment_id=payment_id if payment_id and PAYMENT_ID.fullmatch(payment_id) else None,
        dedupe_key=dedupe_key,
        verdict=verdict,
        answer=answer,
        payload=json.dumps(clean, ensure_ascii=False, sort_keys=True),
        raw_body=raw.kept if raw is not None else None,
        raw_sha256=raw.sha256 if raw is not None else None,
        raw_truncated=raw.truncated if raw is not None else False,
    )


def _record(
    partner: str,
    payload: dict[str, str],
    payment_id: str | None,
    raw: RawBody | None = None,
    verdict: str = "received",
    answer: str | None = None,
) -> int:
    """Keeps the call before it is judged, or with its verdict when judged on arrival (too large,
    malformed, bad signature: nothing of ours was read to judge it)."""
    with Session(get_engine(), expire_on_commit=False) as db:
        row = _row(partner, payload, payment_id, raw, verdict, answer)
        db.add(row)
        db.commit()
        assert row.id is not None
    if verdict != "received":  # judged on arrival: no later verdict will be written
        metrics.callback_verdict(partner, verdict)
    return row.id


async def record(
    partner: str,
    payload: dict[str, str],
    payment_id: str | None,
    raw: RawBody,
    verdict: str = "received",
    answer: str | None = None,
) -> int:
    return await run_in_threadpool(_record, partner, payload, payment_id, raw, verdict, answer)


def claimed(data: dict[str, object] | None, name: str) -> str | None:
    """The order id a message claims, to file even a rejected one under its payment (if well-formed)."""
    value = (data or {}).get(name)
    return value if isinstance(value, str) and PAYMENT_ID.fullmatch(value) else None


def as_payload(data: dict[str, object] | None) -> dict[str, str]:
    """What the ``payload`` column keeps of a parsed body: names and values as text, bounded."""
    if not data:
        return {}
    return {str(k)[:64]: str(v)[:1024] for k, v in data.items()}


# A delivery that finds the same event being processed by another waits this long for its answer
# (CMI gives up on a callback after 10 s), then is answered "try later" so that the partner retries.
IN_FLIGHT_WAIT_SECONDS = 7.0
IN_FLIGHT_POLL_SECONDS = 0.1
# A "processing" row older than this was left by a process that died mid-way: the event is free again.
STALE_PROCESSING = timedelta(minutes=2)
# Verdicts that are not an answer to the partner: the event may be taken over by its next delivery.
# ``amount_mismatch`` is the 422 a genuine Fatourati payment of another amount got before such money
# became unapplied money: its redelivery is judged again, so that the money is kept.
RETRYABLE = frozenset({"temporal_unavailable", "in_flight", "amount_mismatch"})


class CallbackInFlight(Exception):
    """The same partner event is being processed by another delivery and did not finish in time."""


@dataclass(frozen=True)
class _Claim:
    owner: bool  # this delivery now holds the event's key and must process it
    earlier: PartnerCallback | None = None  # the delivery that answered it already (a replay)


def _claim(callback_id: int, dedupe_key: str) -> _Claim | None:
    """One attempt at holding ``dedupe_key`` for this delivery; ``None`` while another processes it.

    Each transaction locks at most one row besides its own and always the holder's first, so that
    concurrent deliveries of one event cannot deadlock (two of them used to take the key from each
    other, each locking the other's row, on PostgreSQL).
    """
    with Session(get_engine(), expire_on_commit=False) as db:
        holder = db.exec(select(PartnerCallback).where(PartnerCallback.dedupe_key == dedupe_key)).first()
        if holder is not None and holder.id == callback_id:
            return _Claim(owner=True)
        if holder is not None:
            if holder.answer is not None and holder.verdict not in RETRYABLE:
                row = db.get(PartnerCallback, callback_id)
                assert row is not None
                row.verdict, row.answer = "replay", holder.answer
                db.add(row)
                db.commit()
                metrics.callback_verdict(row.partner, "replay")
                return _Claim(owner=False, earlier=holder)
            stale = holder.answer is None and holder.received_at < utcnow() - STALE_PROCESSING
            if holder.verdict not in RETRYABLE and not stale:
                return None
            # Never answered for good: this delivery takes the event over, if nobody did meanwhile.
            released: CursorResult[Any] = db.execute(  # type: ignore[assignment]
                update(PartnerCallback)
                .where(col(PartnerCallback.id) == holder.id, col(PartnerCallback.dedupe_key) == dedupe_key)
                .values(dedupe_key=None)
            )
            if released.rowcount != 1:
                db.rollback()
                return None
        try:
            db.execute(
                update(PartnerCallback)
                .where(col(PartnerCallback.id) == callback_id)
                .values(dedupe_key=dedupe_key, verdict="processing", answer=None)
            )
            db.commit()
        except IntegrityError:
            db.rollback()  # another delivery claimed it first
            return None
    return _Claim(owner=True)


async def claim(callback_id: int, dedupe_key: str) -> PartnerCallback | None:
    """Makes this delivery the one that processes the event, or returns the earlier answered one.

    While another delivery of the same event is processing it, waits for its answer (a replay) or
    for it to give up (then takes over); raises ``CallbackInFlight`` past ``IN_FLIGHT_WAIT_SECONDS``.
    """
    deadline = asyncio.get_running_loop().time() + IN_FLIGHT_WAIT_SECONDS
    while True:
        outcome = await run_in_threadpool(_claim, callback_id, dedupe_key)
        if outcome is not None:
            return outcome.earlier
        if asyncio.get_running_loop().time() >= deadline:
            await run_in_threadpool(_finish, callback_id, "in_flight", None)
            raise CallbackInFlight(dedupe_key)
        await asyncio.sleep(IN_FLIGHT_POLL_SECONDS)


def _finish(callback_id: int, verdict: str, answer: str | None) -> None:
    """Writes this delivery's verdict and answer; touches no other row."""
    with Session(get_engine()) as db:
        partner = db.execute(
            update(PartnerCallback)
            .where(col(PartnerCallback.id) == callback_id)
            .values(verdict=verdict, answer=answer)
            .returning(col(PartnerCallback.partner))
        ).scalar_one_or_none()
        db.commit()
    metrics.callback_verdict(partner or "unknown", verdict)


async def judge(
    callback_id: int, verdict: str, answer: str | None, dedupe_key: str | None = None
) -> PartnerCallback | None:
    """Records a verdict; ``processing`` with a dedupe key claims the event (see ``claim``).

    Returns the earlier delivery that already answered the same event, whose answer is given again.
    """
    if verdict == "processing" and dedupe_key:
        return await claim(callback_id, dedupe_key)
    await run_in_threadpool(_finish, callback_id, verdict, answer)
    return None


@dataclass(frozen=True)
class Arrival:
    """A genuine message (well-formed, signed) kept together with what our ledger makes of it."""

    callback_id: int
    payment: Payment | None
    verdict: str  # "processing": this delivery is to process the event; anything else is final
    answer: str | None
    owner: bool  # "processing" and the row already holds the event's dedupe key


# What a channel makes of a genuine message once its payment is read: a final verdict and answer,
# or ("processing", None) to process the event.
Verdict = Callable[[Payment | None], tuple[str, str | None]]


def _arrive(
    partner: str, payload: dict[str, str], order_id: str, raw: RawBody, verdict_of: Verdict, dedupe_key: str
) -> Arrival:
    """One thread hop and one write for a genuine message: the payment read, the row inserted with
    its verdict, holding ``dedupe_key`` when the event is to be processed and nobody holds it yet.

    What ``record`` + ``payment_of`` + ``claim`` did in three hops and two writes (one of them
    waiting for SQLite's write lock again); the claim loop remains for a key already held."""
    with Session(get_engine(), expire_on_commit=False) as db:
        payment = db.get(Payment, order_id) if PAYMENT_ID.fullmatch(order_id) else None
        verdict, answer = verdict_of(payment)
        processing = verdict == "processing"
        row = _row(partner, payload, order_id, raw, verdict, answer, dedupe_key if processing else None)
        db.add(row)
        try:
            db.commit()
            owner = processing
        except IntegrityError:  # another delivery of the event holds the key: ``claim`` decides
            db.rollback()
            row = _row(partner, payload, order_id, raw, "received", None)
            db.add(row)
            db.commit()
            owner = False
        assert row.id is not None
    if not processing:
        metrics.callback_verdict(partner, verdict)
    return Arrival(row.id, payment, verdict, answer, owner)


async def arrive(
    partner: str, payload: dict[str, str], order_id: str, raw: RawBody, verdict_of: Verdict, dedupe_key: str
) -> Arrival:
    return await run_in_threadpool(_arrive, partner, payload, order_id, raw, verdict_of, dedupe_key)


def _payment(payment_id: str) -> Payment | None:
    with Session(get_engine(), expire_on_commit=False) as db:
        return db.get(Payment, payment_id)


async def payment_of(payment_id: str) -> Payment | None:
    return await run_in_threadpool(_payment, payment_id)


# Fixed answers: nothing the caller sent is echoed, nothing is signed.
TOO_LARGE = {"detail": N_("Corps de message trop volumineux.")}
MALFORMED = {"detail": N_("Message invalide.")}
BAD_SIGNATURE = {"detail": N_("Signature invalide.")}


async def release_early(request: Request, payment: Payment, reason: str) -> None:
    """Tells a live attempt to give its invoices back (its ``cancel`` signal, which an accepted approval
    or a closing attempt ignores) once money it can never take was kept for finance. Best effort: if
    Temporal does not take it, the attempt's own deadline gives them back."""
    if PaymentStatus(payment.status).is_final:
        return
    client = await request.app.state.temporal.get()
    if client is None:
        return
    try:
        await client.get_workflow_handle(payment.workflow_id).signal(PaymentWorkflow.cancel, reason)
        forget_view(payment.id)
    except RPCError as err:
        log.info("attempt %s not told to release early: %s", payment.id, err.status)
