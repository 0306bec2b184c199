"""The ledger tables.

Amounts are stored as integer centimes (see ``MoneyType``) so that SQLite and PostgreSQL are both
exact; Python sees ``Decimal`` with two places. Timestamps are naive UTC (annotated
``NaiveDatetime``: SQLModel maps a bare ``datetime`` to a timezone-aware column that refuses naive values).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import NaiveDatetime
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from portnet.money import CENT, to_money


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class MoneyType(TypeDecorator[Decimal]):
    """Decimal in Python, integer centimes in the database."""

    impl = sa.BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        return int(to_money(value) / CENT)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(int(value)) * CENT).quantize(CENT)


def money_column(nullable: bool = False) -> Any:
    return Field(sa_column=sa.Column(MoneyType(), nullable=nullable))


class Company(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    customs_code: str = Field(unique=True, index=True)
    ice: str | None = None
    address: str | None = None
    email: str | None = None
    # PORTNET subscription: renewed only once a subscription invoice's money is in the bank.
    subscription_end: date | None = None
    # The company's customer id at MARSA MAROC (pre-fills "Nouvelle demande de facture").
    marsa_customer_id: str | None = None


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True)
    password_hash: str
    role: str = "client"
    company_id: int | None = Field(default=None, foreign_key="company.id")
    full_name: str | None = None
    email: str | None = None
    must_change_password: bool = False
    is_active: bool = True
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class UserSession(SQLModel, table=True):
    """Server-side session: the cookie holds a random token, the table its SHA-256.

    ``expires_at`` is the absolute end (login + 8 h); ``last_seen_at`` drives the idle timeout and is
    written at most once a minute, so reading pages does not turn into a write per request.
    """

    token_hash: str = Field(primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    expires_at: NaiveDatetime
    last_seen_at: NaiveDatetime = Field(default_factory=utcnow)


class LoginThrottle(SQLModel, table=True):
    """Recent login failures of one account name or one client address (portnet/login_throttle.py).

    In the database, not in a process, so every portal replica sees the same counts. The account key
    is the name as typed (case-folded), whether or not such a user exists: an unknown name is
    throttled exactly like a real one.
    """

    __tablename__ = "login_throttle"

    scope: str = Field(primary_key=True)  # "account" | "address"
    key: str = Field(primary_key=True)
    failures: int = 0
    last_failure_at: NaiveDatetime | None = Field(default=None, index=True)
    locked_until: NaiveDatetime | None = None


class Emitter(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True)
    name: str = Field(index=True)
    cin: str | None = None
    rc_centre: str | None = None
    rc_number: str | None = None
    ifu: str | None = None
    address: str | None = None
    active: bool = True
    # PORTNET's own invoices are paid as soon as the money is confirmed; other emitters
    # acknowledge the settlement notice first.
    settles_directly: bool = False


class Invoice(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("emitter_id", "number", name="uq_invoice_emitter_number"),
        sa.Index("ix_invoice_company_date", "company_id", "invoice_date"),
        sa.Index("ix_invoice_company_status_date", "company_id", "status", "invoice_date"),
        sa.Index("ix_invoice_status_date", "status", "invoice_date"),
        sa.Index("ix_invoice_emitter_date", "emitter_id", "invoice_date"),
        # A client's searches by number and by emitter (bench/search.py at 1,000,000 invoices).
        sa.Index("ix_invoice_company_number", "company_id", "number", "invoice_date"),
        sa.Index("ix_invoice_company_emitter_date", "company_id", "emitter_id", "invoice_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True)
    type: str = "principale"
    principal_number: str | None = None
    emitter_id: int = Field(foreign_key="emitter.id")
    company_id: int = Field(foreign_key="company.id")
    invoice_date: NaiveDatetime
    due_date: NaiveDatetime | None = None
    amount_ht: Decimal = money_column()
    amount_tva: Decimal = money_column()
    amount_ttc: Decimal = money_column()
    currency: str = "MAD"
    status: str = "unpaid"
    # Comma-separated PaymentMethod codes ("cmi,amanpay,cheque,virement").
    payment_methods: str = "cmi"
    description: str | None = None
    cancelled_at: NaiveDatetime | None = None
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    # True for a subscription invoice: its encashment extends the company's subscription.
    is_subscription: bool = False

    @property
    def methods(self) -> list[str]:
        return [m for m in self.payment_methods.split(",") if m]


class PrestationLine(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    prestation: str = Field(index=True)
    operation_type: str = Field(index=True)
    reference: str | None = Field(default=None, index=True)
    end_date: NaiveDatetime | None = None


class Payment(SQLModel, table=True):
    """One payment attempt; its life is driven by the workflow ``workflow_id``."""

    id: str = Field(primary_key=True)  # also the CMI oid
    workflow_id: str = Field(unique=True)
    channel: str
    amount: Decimal = money_column()
    status: str = "started"
    company_id: int = Field(foreign_key="company.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="user.id")
    emitter_codes: str = ""
    invoice_numbers: str = ""
    payer_email: str | None = None
    partner_transaction_id: str | None = None
    failure_reason: str | None = None
    created_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    updated_at: NaiveDatetime = Field(default_factory=utcnow)
    paid_at: NaiveDatetime | None = None
    # SHA-256 of the receipt's verification code (portnet/receipt_codes.py), set when the receipt is
    # issued: the public page /verification/<code> finds the receipt by it.
    receipt_code_hash: str | None = Field(default=None, unique=True, index=True)


class PaymentInvoice(SQLModel, table=True):
    """Which invoices an attempt covers; ``in_force`` is the guide's "Paiement en vigueur"."""

    payment_id: str = Field(foreign_key="payment.id", primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", primary_key=True, index=True)
    amount_ttc: Decimal = money_column()
    in_force: bool = False


class InvoiceHold(SQLModel, table=True):
    """An invoice held by a live attempt. The primary key is the rule: one live attempt per invoice."""

    invoice_id: int = Field(foreign_key="invoice.id", primary_key=True)
    payment_id: str = Field(foreign_key="payment.id", index=True)
    # What the invoice goes back to when the attempt ends without money.
    previous_status: str = "unpaid"
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class Document(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int | None = Field(default=None, foreign_key="invoice.id", index=True)
    payment_id: str | None = Field(default=None, foreign_key="payment.id", index=True)
    kind: str  # "invoice" | "receipt"
    name: str
    description: str
    content_type: str = "application/pdf"
    # Receipts are stored (they are what was issued); invoice PDFs are rendered on demand.
    content: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary, nullable=True))
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class InvoiceMessage(SQLModel, table=True):
    """The numbered exchange log of an invoice ("Liste des messages")."""

    __table_args__ = (sa.UniqueConstraint("invoice_id", "seq", name="uq_message_invoice_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    seq: int
    function: str
    name: str | None = None
    state: str
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    user_name: str | None = None
    receiver: str | None = None
    observations: str | None = None
    needs_reply: bool = False
    payment_id: str | None = None
    # Idempotency for activities that may be retried: one message per (invoice, key).
    dedupe_key: str | None = Field(default=None, unique=True)


class IdempotencyKey(SQLModel, table=True):
    """A client's ``Idempotency-Key`` for starting a payment, kept 24 hours (Stripe's rules).

    The payment id is chosen and kept here before the workflow is started, so that a retry after an
    answer lost in an outage (the start reached Temporal, the client saw an error) joins the same
    attempt instead of being refused as a conflict. Once the start has a final answer, its status
    and body are kept and given again to every retry with the same request.
    """

    __tablename__ = "idempotency_key"

    user_id: int = Field(foreign_key="user.id", primary_key=True)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str  # SHA-256 of the canonical request: same key, other request -> 422
    payment_id: str
    status_code: int | None = None  # the final answer, once there is one
    response_body: str | None = None  # JSON
    created_at: NaiveDatetime = Field(default_factory=utcnow, index=True)


class SentMail(SQLModel, table=True):
    """An e-mail that went out: a retried send activity finds it here and does not send it twice."""

    __tablename__ = "sent_mail"

    # What the mail is, not when: "<kind>:<payment id>" (plus a hash of the code for a cash code).
    key: str = Field(primary_key=True)
    message_id: str
    recipient: str
    sent_at: NaiveDatetime = Field(default_factory=utcnow)


class PartnerCallback(SQLModel, table=True):
    """Every call a partner made to us, kept before it is acted on, with what we made of it."""

    id: int | None = Field(default=None, primary_key=True)
    partner: str = Field(index=True)
    payment_id: str | None = Field(default=None, index=True)
    # Same partner event twice -> same key; the second one is a replay.
    dedupe_key: str | None = Field(default=None, unique=True)
    # accepted | declined | replay | too_large | malformed | bad_signature | unknown_order
    # | reference_mismatch | amount_mismatch | late | unapplied ...
    verdict: str
    answer: str | None = None
    payload: str  # JSON, card number masked by the partner already
    received_at: NaiveDatetime = Field(default_factory=utcnow)
    # The body as it came, kept before it is judged: at most 16 KB (a longer one is cut there and
    # refused with 413), card fields removed (NEVER_STORED), and the SHA-256 of exactly these bytes.
    raw_body: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary, nullable=True))
    raw_sha256: str | None = None
    raw_truncated: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class PaymentChannelData(SQLModel, table=True):
    """What a channel adds to an attempt: the Fatourati reference, or the payer's declaration.

    A table of its own (one row per attempt) keeps ``payment`` the same for every channel.
    """

    __tablename__ = "payment_channel_data"

    payment_id: str = Field(foreign_key="payment.id", primary_key=True)
    # The Fatourati 13-digit reference (tokenRef), unique across attempts.
    partner_reference: str | None = Field(default=None, unique=True)
    expires_at: NaiveDatetime | None = None
    # Cheque: number and bank; transfer: reference and date. JSON.
    declaration: str | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    decided_at: NaiveDatetime | None = None


class UnappliedPayment(SQLModel, table=True):
    """Money a partner reports that no invoice took: late (after the deadline), duplicate, unknown.

    Never dropped and never applied silently: finance applies it to an unpaid invoice or marks it
    for refund. Its one writer is portnet/unapplied.py.
    """

    __tablename__ = "unapplied_payment"

    id: int | None = Field(default=None, primary_key=True)
    partner: str
    # The partner's own transaction number: one row per partner transaction.
    transaction_number: str = Field(unique=True)
    partner_reference: str | None = Field(default=None, index=True)
    payment_id: str | None = Field(default=None, foreign_key="payment.id", index=True)
    callback_id: int | None = Field(default=None, foreign_key="partnercallback.id")
    amount: Decimal = money_column()
    reason: str
    # open | applying (held for an invoice by ApplyUnappliedWorkflow) | applied | refund
    status: str = Field(default="open", index=True)
    invoice_id: int | None = Field(default=None, foreign_key="invoice.id")
    decided_by: str | None = None
    decided_at: NaiveDatetime | None = None
    note: str | None = None
    # The channel it came through (cmi_fatourati, amanpay_code...): applied, it pays on that channel.
    channel: str
    # When the payer paid, as the partner says (None: unknown, received_at stands for it).
    paid_at: NaiveDatetime | None = None
    received_at: NaiveDatetime = Field(default_factory=utcnow, index=True)


class ReconciliationRun(SQLModel, table=True):
    """One pass of ``ReconciliationWorkflow`` (every few minutes, from its Temporal Schedule)."""

    __tablename__ = "reconciliation_run"

    id: str = Field(primary_key=True)  # the workflow's run id
    started_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    finished_at: NaiveDatetime | None = None
    # What the run looked at, and how many of those became new findings / could not be settled yet.
    candidates: int = 0
    findings: int = 0
    errors: int = 0


class ReconciliationFinding(SQLModel, table=True):
    """Something reconciliation found in the ledger and what it did about it, for finance to read.

    Kinds: ``stuck_callback`` (a partner's call left "processing" or "temporal_unavailable"),
    ``expired_attempt`` (an attempt over whose partner was asked: paid or not), ``orphan_hold``
    (invoices held by an attempt whose workflow is closed), ``overdue_attempt`` (a live attempt past
    its deadline). ``dedupe_key`` makes a finding once: a second run finds nothing new.
    """

    __tablename__ = "reconciliation_finding"

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True)
    run_id: str = Field(index=True)
    kind: str = Field(index=True)
    # delivered | unapplied | released | recorded | unpaid_at_partner | left_to_workflow
    outcome: str = Field(index=True)
    payment_id: str | None = Field(default=None, index=True)
    partner: str | None = None
    amount: Decimal | None = money_column(nullable=True)
    detail: str = ""
    callback_id: int | None = None
    unapplied_id: int | None = None
    partner_transaction: str | None = None
    found_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    resolved_at: NaiveDatetime | None = None


class PasswordResetToken(SQLModel, table=True):
    """A "Mot de passe oublié" link: single use, 30 minutes. Only the SHA-256 of its token is kept,
    so a leaked table cannot be turned into working links."""

    __tablename__ = "password_reset_token"

    token_hash: str = Field(primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    expires_at: NaiveDatetime
    used_at: NaiveDatetime | None = None


class AccessRequest(SQLModel, table=True):
    """A "Nouveau client ?" request: a company asking for portal access, until finance handles it."""

    __tablename__ = "access_request"

    id: int | None = Field(default=None, primary_key=True)
    company_name: str
    customs_code: str
    contact_name: str
    email: str
    phone: str
    role: str  # what the company is: importateur, transitaire...
    created_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    handled_at: NaiveDatetime | None = None
    handled_by: str | None = None
