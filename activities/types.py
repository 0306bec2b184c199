"""What the payment workflow and the ledger activities exchange, and the payloads several adapters share.

Plain dataclasses of str/int/bool so the default Temporal converter carries them unchanged; amounts
travel as strings with two decimals ("3600.00"): exact, and readable in the Web UI's history. Their
FIELD names are what recorded histories hold (tests/histories/): rename a class freely, a field never.
A partner adapter's own payloads live in its module (activities/fatourati.py, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PayerInfo:
    name: str
    email: str
    phone: str | None = None


@dataclass
class NextAction:
    """What the payer does next: the card form to post, the page to open, the code to use..."""

    type: str  # "redirect_form" | "redirect" | "payment_code" | "sms_code" | "fatourati_reference" | "none"
    url: str | None = None
    fields: dict[str, str] | None = None
    # payment_code: the cash code; payment_code and sms_code: when it stops being valid.
    code: str | None = None
    expires_at: str | None = None
    # sms_code: tries left on the current code, resends left, and when the next resend is allowed.
    attempts_left: int | None = None
    resends_left: int | None = None
    resend_at: str | None = None


@dataclass
class Decline:
    """A refusal by the partner while the payer may still try again; logged at settlement or release."""

    trans_id: str
    proc_return_code: str
    err_msg: str | None
    at: str


# --- the ledger: hold, settle, release, acknowledge --------------------------------------------


@dataclass
class ReserveInput:
    payment_id: str
    workflow_id: str
    channel: str
    company_id: int
    user_id: int | None
    user_name: str
    invoice_ids: list[int]
    payer_email: str


@dataclass
class ReservedInvoice:
    id: int
    number: str
    emitter_code: str
    emitter_name: str
    amount_ttc: str
    settles_directly: bool


@dataclass
class Reservation:
    ok: bool
    amount: str = "0.00"
    invoices: list[ReservedInvoice] = field(default_factory=list)
    client_name: str = ""
    client_code: str = ""
    # Set when ok is False: a stable code and a French sentence for the payer.
    error_code: str | None = None
    error: str | None = None


@dataclass
class SettleInput:
    payment_id: str
    channel: str
    user_name: str
    transaction_id: str
    auth_code: str | None
    masked_pan: str | None
    paid_at: str  # ISO 8601, from workflow time
    payer: PayerInfo
    declines: list[Decline] = field(default_factory=list)
    # True: the settlement writes no receipt; ``issue_receipt`` lays it out and stores it after the
    # settlement has committed (attempts begun on rule ``receipt-after-settlement``). False: the
    # receipt is stored with the settlement, as for attempts begun before and for unapplied money.
    receipt_after: bool = False


@dataclass
class IssuedReceipt:
    """The receipt issued after a settlement: the document the payer downloads."""

    document_id: int
    receipt_number: str


@dataclass
class Settlement:
    receipt_document_id: int
    receipt_number: str
    # Invoices waiting for their emitter's acknowledgement, grouped by emitter code.
    awaiting_emitters: dict[str, list[str]] = field(default_factory=dict)
    # False when the attempt no longer held its invoices (released meanwhile): nothing was settled,
    # the money was recorded as unapplied money for finance instead.
    applied: bool = True


@dataclass
class ReleaseInput:
    payment_id: str
    channel: str
    user_name: str
    final_status: str  # failed | expired | cancelled
    reason: str
    declines: list[Decline] = field(default_factory=list)


@dataclass
class MarkPaidInput:
    payment_id: str
    emitter_code: str
    emitter_ack_id: str
