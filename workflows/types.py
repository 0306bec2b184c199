"""Inputs, outputs and states of the payment workflow and its activities.

Plain dataclasses of str/int/bool so the default Temporal converter carries them unchanged. Amounts
travel as strings with two decimals ("3600.00"): exact, and readable in the Web UI's history.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PayerInfo:
    name: str
    email: str
    phone: str | None = None


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
    # Issue 4: Fatourati's reference life and reminder, the cheque/transfer wait, the declaration.
    reminder_before_seconds: int = 1800
    declaration: dict[str, str] | None = None
    finance_alert_email: str = "finance@portnet.ma"
    # Amanpay sub-channels only.
    amanpay: AmanpayPayer | None = None
    amanpay_settings: AmanpaySettings | None = None


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
class CmiFormInput:
    payment_id: str
    amount: str
    payer: PayerInfo
    client_name: str
    lang: str = "fr"


@dataclass
class NextAction:
    type: str  # "redirect_form" | "redirect" | "payment_code" | "sms_code" | "none"
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
class CmiResult:
    """What the verified CMI callback said; the raw callback is already stored by the web layer."""

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


@dataclass
class CmiDecision:
    """Our answer to CMI: capture (POSTAUTH) or acknowledge without capture (APPROVED)."""

    answer: str
    reason: str


@dataclass
class Decline:
    trans_id: str
    proc_return_code: str
    err_msg: str | None
    at: str


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


@dataclass
class Settlement:
    receipt_document_id: int
    receipt_number: str
    # Invoices waiting for their emitter's acknowledgement, grouped by emitter code.
    awaiting_emitters: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class ReleaseInput:
    payment_id: str
    channel: str
    user_name: str
    final_status: str  # failed | expired | cancelled
    reason: str
    declines: list[Decline] = field(default_factory=list)


@dataclass
class EmailInput:
    payment_id: str
    to: str
    kind: str  # "payment_confirmed"


@dataclass
class EmitterNoticeInput:
    payment_id: str
    emitter_code: str
    invoice_numbers: list[str]
    transaction_id: str
    paid_at: str


@dataclass
class EmitterAck:
    emitter_code: str
    notice_id: str
    emitter_ack_id: str
    callback_id: int


@dataclass
class MarkPaidInput:
    payment_id: str
    emitter_code: str
    emitter_ack_id: str


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


# --- issue 4: CMI Fatourati, cheque and bank transfer, finance decisions ------------------------


@dataclass
class TokenInput:
    payment_id: str
    amount: str
    expires_at: str  # ISO 8601 UTC, from workflow time
    payer: PayerInfo


@dataclass
class FatouratiToken:
    reference: str
    expires_at: str


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
class ReferenceEmailInput:
    payment_id: str
    to: str
    kind: str  # "fatourati_reference" | "fatourati_reminder" | "offline_unconfirmed"


@dataclass
class FinanceDecision:
    confirm: bool
    user_name: str
    reason: str = ""


@dataclass
class DecisionLogInput:
    payment_id: str
    user_name: str
    confirm: bool
    reason: str
    at: str


@dataclass
class RenewalInput:
    payment_id: str
    confirmed_on: str  # ISO date of the confirmation, from workflow time


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
class AmanpayOrderInput:
    payment_id: str
    method: str  # code | amanty
    amount: str
    email: str
    last_name: str = ""
    first_name: str = ""
    ttl_seconds: int = 0


@dataclass
class AmanpayOrder:
    ok: bool
    code: str | None = None
    expires_at: str | None = None
    redirect_url: str | None = None
    error: str | None = None


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
class CodeEmailInput:
    payment_id: str
    to: str
    code: str
    amount: str
    expires_at: str
    last_name: str = ""
    first_name: str = ""


@dataclass
class PayDirectStartInput:
    payment_id: str
    amount: str
    contract_number: str
    cin: str
    mandataire: str
    phone: str
    email: str


@dataclass
class PayDirectStart:
    ok: bool
    auth_ref: str = ""
    attempts_left: int = 0
    error_code: str | None = None
    error: str | None = None


@dataclass
class SealedCode:
    """The SMS code as the workflow sees it: ciphertext bound to the payment, never the digits."""

    sealed: str


@dataclass
class PayDirectVerifyInput:
    payment_id: str
    auth_ref: str
    sealed: str
    request_id: str


@dataclass
class PayDirectVerdict:
    result: str  # authorized | wrong | dead | expired
    attempts_left: int = 0
    transaction_id: str = ""
    authorization_code: str = ""


@dataclass
class SmsCodeOutcome:
    result: str  # authorized | wrong | dead | expired
    attempts_left: int
    message: str


@dataclass
class SmsResendOutcome:
    expires_at: str
    resends_left: int
