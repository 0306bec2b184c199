"""What the web layer and the payment workflow exchange: the input, the view, and every partner or
payer message with its answer.

Plain dataclasses of str/int/bool so the default Temporal converter carries them unchanged. Amounts
travel as strings with two decimals ("3600.00"): exact, and readable in the Web UI's history. Their
FIELD names are what recorded histories hold (tests/histories/): rename a class freely, a field never.
The payer, a decline and the payer's next action are the activities' types too (activities/types.py);
they are importable from here as well, so the web layer needs this module only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from activities.types import Decline, NextAction, PayerInfo

__all__ = [
    "AmanpayDecision",
    "AmanpayNotice",
    "AmanpayPayer",
    "AmanpaySettings",
    "CmiDecision",
    "CmiResult",
    "Decline",
    "EmitterAck",
    "FatouratiDecision",
    "FatouratiResult",
    "FinanceDecision",
    "FinanceVerdict",
    "NextAction",
    "PayerInfo",
    "PaymentInput",
    "PaymentView",
    "SealedCode",
    "SmsCodeOutcome",
    "SmsResendOutcome",
]


@dataclass
class PaymentInput:
    payment_id: str
    channel: str
    company_id: int
    user_id: int | None
    user_name: str
    invoice_ids: list[int]
    payer: PayerInfo
    # Deadlines come from settings through the input: the workflow reads no environment.
    payment_deadline_seconds: int = 1200
    emitter_ack_deadline_seconds: int = 7 * 24 * 3600
    lang: str = "fr"
    # Fatourati's reminder before the reference expires; the cheque or transfer declared.
    reminder_before_seconds: int = 1800
    declaration: dict[str, str] | None = None
    finance_alert_email: str = "finance@portnet.ma"
    # Amanpay sub-channels only.
    amanpay: AmanpayPayer | None = None
    amanpay_settings: AmanpaySettings | None = None


@dataclass
class CmiResult:
    """What the verified CMI callback said; the raw callback is already stored by the web layer.

    The argument of the ``cmi_result`` Update only: an accepted payment of any channel is an
    ``Approval`` inside the workflow (workflows/attempt.py).
    """

    callback_id: int
    approved: bool
    proc_return_code: str
    trans_id: str
    amount: str
    auth_code: str | None = None
    host_ref_num: str | None = None
    masked_pan: str | None = None
    err_msg: str | None = None
    transaction_date: str | None = None
    # When the portal received the callback (ISO 8601, its clock). An Update that reaches the
    # workflow promptly says the portal is not queueing: CMI will read our answer at once, and the
    # workflow looks at CMI's order sooner (workflows/channels/cmi_card.py). None from older portals.
    received_at: str | None = None


@dataclass
class CmiDecision:
    """Our answer to CMI: capture (POSTAUTH) or acknowledge without capture (APPROVED)."""

    answer: str
    reason: str


@dataclass
class EmitterAck:
    """An emitter's verified acknowledgement of our settlement notice: the ``emitter_acknowledged`` Signal."""

    emitter_code: str
    notice_id: str
    emitter_ack_id: str
    callback_id: int


@dataclass
class PaymentView:
    """What the API and the portal show of an attempt, read from the workflow by query."""

    id: str
    workflow_id: str
    status: str
    channel: str
    amount: str
    invoice_ids: list[int]
    invoice_numbers: list[str] = field(default_factory=list)
    next_action: NextAction | None = None
    error_code: str | None = None
    error: str | None = None
    transaction_id: str | None = None
    receipt_document_id: int | None = None
    declines: int = 0
    last_decline: str | None = None
    deadline: str | None = None
    awaiting_emitters: list[str] = field(default_factory=list)
    # Set by the web layer when the workflow could not answer (no worker) and the ledger row is shown.
    from_ledger: bool = False


# --- CMI Fatourati, cheque and bank transfer (finance's decision) ---------------------------------


@dataclass
class FatouratiResult:
    """CMI Fatourati's verified payment callback; the raw callback is already stored."""

    callback_id: int
    transaction_number: str
    decision_code: str  # "0" paid, "1" refused
    amount: str
    channel: str
    transaction_date: str | None = None


@dataclass
class FatouratiDecision:
    # accepted | duplicate | refused | unapplied | amount_mismatch
    outcome: str
    reason: str
    receipt_number: str | None = None


@dataclass
class FinanceDecision:
    confirm: bool
    user_name: str
    reason: str = ""


@dataclass
class FinanceVerdict:
    """The workflow's answer to finance's decision: taken, or refused with the French reason shown."""

    accepted: bool
    reason: str = ""


# --- Amanpay (cash code, Amanty) and PayDirect -----------------------------------------------------


@dataclass
class AmanpayPayer:
    """The channel's own fields of ``payer`` (cash code: names; PayDirect: the contract)."""

    last_name: str = ""
    first_name: str = ""
    contract_number: str = ""
    cin: str = ""
    mandataire: str = ""
    phone: str = ""


@dataclass
class AmanpaySettings:
    code_ttl_seconds: int = 259200
    redirect_deadline_seconds: int = 1200
    otp_ttl_seconds: int = 600
    step_timeout_seconds: int = 900
    resend_interval_seconds: int = 60
    max_resends: int = 3


@dataclass
class AmanpayNotice:
    """A verified Amanpay notification (the raw one is stored by the web layer)."""

    callback_id: int
    event_id: str
    status: str  # paid | refused | cancelled
    amount: str
    transaction_id: str = ""
    channel: str = ""
    reason: str = ""


@dataclass
class AmanpayDecision:
    accepted: bool
    reason: str


@dataclass
class SealedCode:
    """The SMS code as the workflow sees it: ciphertext bound to the payment, never the digits."""

    sealed: str


@dataclass
class SmsCodeOutcome:
    result: str  # authorized | wrong | dead | expired
    attempts_left: int
    message: str


@dataclass
class SmsResendOutcome:
    expires_at: str
    resends_left: int
