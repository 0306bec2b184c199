"""``Idempotency-Key`` on payment starts, with Stripe's rules.

A payer's browser or an integrator's script retries a start whose answer it did not get (a timeout,
Temporal restarting). Without a key, the retry is a second start: refused as a conflict (the first
one holds the invoices) or, worse, a second attempt. With a key:

- the first request chooses the payment id and keeps it under the key *before* starting the
  workflow, so a retry joins the attempt the first one started, even if that answer was lost;
- once the start has a final answer (the attempt, or a refusal), a retry with the same request gets
  it again (200 for an attempt, the same status for a refusal), marked ``Idempotent-Replayed``;
- the same key with another request is refused (422), and keys are forgotten after 24 hours.

"Try again later" (503) is not a final answer and is never kept. Keys are per user.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from portnet.db import get_engine
from portnet.i18n import N_
from portnet.models import IdempotencyKey, Payment, utcnow
from web.attempts import new_payment_id

HEADER = "Idempotency-Key"
KEPT = timedelta(hours=24)
# Visible ASCII, as Stripe's keys (UUIDs, random strings): nothing that could smuggle a header.
KEY_FORMAT = re.compile(r"[\x21-\x7e]{1,255}")


class KeyRefused(Exception):
    """A key that cannot be honoured; ``message`` is for the client, in French."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message, self.code = message, code


@dataclass(frozen=True)
class Replay:
    """The final answer the first request got."""

    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Proceed:
    """Start (or join) the attempt with this payment id."""

    payment_id: str


def request_digest(body: dict[str, Any]) -> str:
    """The request as the key's owner sent it, canonically: key order and spacing do not count."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def checked_key(key: str) -> str:
    if not KEY_FORMAT.fullmatch(key):
        raise KeyRefused(
            "En-tête Idempotency-Key invalide : 1 à 255 caractères ASCII visibles.", "invalid_idempotency_key"
        )
    return key


def begin(user_id: int, key: str, digest: str) -> Replay | Proceed:
    """Finds or creates the key's record: the earlier answer, or the payment id to start with."""
    with Session(get_engine(), expire_on_commit=False) as db:
        row = db.get(IdempotencyKey, (user_id, key))
        if row is None or row.created_at < utcnow() - KEPT:
            # This user's keys past 24 hours are forgotten (this one included, if it was).
            db.execute(
                delete(IdempotencyKey).where(
                    col(IdempotencyKey.user_id) == user_id, col(IdempotencyKey.created_at) < utcnow() - KEPT
                )
            )
            db.commit()
            row = db.get(IdempotencyKey, (user_id, key))
        if row is None:
            row = IdempotencyKey(user_id=user_id, key=key, request_hash=digest, payment_id=new_payment_id())
            db.add(row)
            try:
                db.commit()
            except IntegrityError:
                db.rollback()  # the same key, sent twice at once: the other one created it
                return begin(user_id, key, digest)
            return Proceed(row.payment_id)
        if row.request_hash != digest:
            raise KeyRefused(
                N_("Cette clé Idempotency-Key a déjà servi pour une autre demande de paiement."),
                "idempotency_key_reused",
            )
        if row.status_code is not None and row.response_body is not None:
            return Replay(row.status_code, json.loads(row.response_body))
        return Proceed(row.payment_id)


def finish(user_id: int, key: str, status_code: int, body: dict[str, Any]) -> None:
    """Keeps the start's final answer (the first one kept wins)."""
    with Session(get_engine()) as db:
        db.execute(
            update(IdempotencyKey)
            .where(
                col(IdempotencyKey.user_id) == user_id,
                col(IdempotencyKey.key) == key,
                col(IdempotencyKey.status_code).is_(None),
            )
            .values(status_code=status_code, response_body=json.dumps(body, ensure_ascii=False))
        )
        db.commit()


def attempt_begun(user_id: int, key: str) -> str | None:
    """The payment id of the attempt a request under this key already began, if there is one.

    For the portal's form: its second submit finds the invoices held by the first one's attempt,
    and must land on that attempt's page rather than be told the invoices are in payment.
    """
    with Session(get_engine()) as db:
        row = db.get(IdempotencyKey, (user_id, key))
        if row is None or row.created_at < utcnow() - KEPT:
            return None
        if row.status_code == 201 or db.get(Payment, row.payment_id) is not None:
            return row.payment_id
        return None
