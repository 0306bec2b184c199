"""The recorded workflow histories: every path that must have one, and what its history must show.

The replay test (tests/workflows/test_replay.py) fails when one of these files is missing, when a
history does not show what its entry says (workflow type, Updates and Signals, final status), and of
course when today's workflow code no longer replays it. The recorder (tests/histories/record.py)
plays the same list. A path added to the workflows gets an entry here and a scenario there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

HISTORIES = Path(__file__).resolve().parent

PAYMENT = "PaymentWorkflow"
MARSA_REQUEST = "MarsaRequestWorkflow"
RECONCILIATION = "ReconciliationWorkflow"
UNAPPLIED = "ApplyUnappliedWorkflow"


@dataclass(frozen=True)
class RecordedPath:
    """One path through a workflow, recorded once from the code of the day it was recorded."""

    name: str
    workflow: str
    # The ``status`` of the workflow's result; None when Temporal cancelled the run (no result).
    status: str | None
    # The Updates and Signals the web layer sent, as many times as they must appear in the history.
    messages: tuple[str, ...]
    about: str

    @property
    def business_id(self) -> str:
        """The payment id (``PN`` + 12 hex), the MARSA MAROC request id (``MR`` + 12 hex) or the
        unapplied payment's row id.

        Derived from the name, so a re-recording reuses the same ids and the workflow id of a history
        is known without storing it (the JSON of ``WorkflowHistory.to_json()`` does not carry it).
        """
        digest = hashlib.sha256(self.name.encode()).hexdigest()
        if self.workflow == UNAPPLIED:
            return str(int(digest[:6], 16))  # the unapplied payment's row id
        prefix = {MARSA_REQUEST: "MR", RECONCILIATION: "RC"}.get(self.workflow, "PN")
        return prefix + digest[:12].upper()

    @property
    def workflow_id(self) -> str:
        if self.workflow == MARSA_REQUEST:
            return f"marsa-request-{self.business_id}"
        if self.workflow == RECONCILIATION:
            return f"reconciliation-{self.business_id}"
        if self.workflow == UNAPPLIED:
            return f"unapplied-{self.business_id}"
        return f"payment-{self.business_id}"


def _payment(name: str, status: str | None, messages: tuple[str, ...], about: str) -> RecordedPath:
    # Every payment attempt starts with the ``ready`` Update (update-with-start), as the API does it.
    return RecordedPath(name, PAYMENT, status, ("ready", *messages), about)


PATHS: tuple[RecordedPath, ...] = (
    # --- CMI card ---------------------------------------------------------------------------------
    _payment("payment_card_approved", "succeeded", ("cmi_result",), "approved at once, PORTNET invoice"),
    _payment(
        "payment_card_declined_then_approved",
        "succeeded",
        ("cmi_result", "cmi_result"),
        "a declined card, then an approved one; the decline is logged at settlement",
    ),
    _payment("payment_card_expired", "expired", (), "nobody pays before the deadline"),
    _payment(
        "payment_card_declined_then_expired",
        "failed",
        ("cmi_result",),
        "one decline, then the deadline: a failure with the decline logged",
    ),
    _payment("payment_card_cancelled_by_payer", "cancelled", ("cancel",), "the payer cancels"),
    _payment(
        "payment_card_cancelled_by_operator",
        None,
        (),
        "an operator cancels the run in Temporal while it waits: invoices released, run cancelled",
    ),
    _payment(
        "payment_card_invoice_already_held",
        "failed",
        (),
        "the reservation is refused (invoice held by another attempt): ready answers failed",
    ),
    _payment(
        "payment_card_emitter_acknowledged",
        "succeeded",
        ("cmi_result", "emitter_acknowledged"),
        "PORTNET and ANP invoices: ANP acknowledges the settlement notice, its invoice is marked paid",
    ),
    _payment(
        "payment_card_emitter_silent",
        "succeeded",
        ("cmi_result",),
        "ANP never acknowledges: the 7-day wait ends, the invoice stays for finance",
    ),
    _payment(
        "payment_card_capture_confirmed",
        "succeeded",
        ("cmi_result",),
        "approved; CMI's order status shows the capture our POSTAUTH answer asked for, then settled",
    ),
    _payment(
        "payment_card_captured_through_api",
        "succeeded",
        ("cmi_result",),
        "approved, but our POSTAUTH answer never reached CMI: authorised only, captured by PostAuth, settled",
    ),
    _payment(
        "payment_card_not_captured",
        "failed",
        ("cmi_result",),
        "approved, but CMI holds neither a capture nor an authorisation: not settled, invoices released",
    ),
    _payment(
        "payment_card_capture_seen_early",
        "succeeded",
        ("cmi_result",),
        "approved; CMI's order shows the capture at the first look, soon after our answer: settled",
    ),
    _payment(
        "payment_card_capture_seen_at_a_later_look",
        "succeeded",
        ("cmi_result",),
        "approved; authorised only at two looks, captured at the third (CMI read our answer late): settled",
    ),
    _payment(
        "payment_card_captured_through_api_after_the_looks",
        "succeeded",
        ("cmi_result",),
        "approved; authorised only at every look of CMI's grace: captured by PostAuth after it, settled",
    ),
    _payment(
        "payment_card_voided_during_the_looks",
        "failed",
        ("cmi_result",),
        "approved; authorised at the first look, held no more at the second: not settled, invoices released",
    ),
    _payment(
        "payment_card_capture_after_a_queued_callback",
        "succeeded",
        ("cmi_result",),
        "approved by a callback that queued a second at the portal: first look at 150 ms, not 50: settled",
    ),
    # --- CMI Fatourati ----------------------------------------------------------------------------
    _payment("payment_fatourati_paid", "succeeded", ("fatourati_result",), "paid at a bank after 10 minutes"),
    _payment(
        "payment_fatourati_paid_twice",
        "succeeded",
        ("fatourati_result", "fatourati_result"),
        "a second transaction on the paid reference: the workflow answers unapplied",
    ),
    _payment(
        "payment_fatourati_refused_then_paid",
        "succeeded",
        ("fatourati_result", "fatourati_result"),
        "the bank refuses (decisionCode 1), then a payment settles",
    ),
    _payment(
        "payment_fatourati_expired",
        "expired",
        (),
        "reminder 30 minutes before the 3-hour deadline, then the token is cancelled at CMI",
    ),
    _payment(
        "payment_fatourati_paid_late",
        "expired",
        ("fatourati_result",),
        "a payment callback after the deadline, while the token is being cancelled: unapplied",
    ),
    _payment("payment_fatourati_cancelled_by_payer", "cancelled", ("cancel",), "the payer cancels"),
    _payment(
        "payment_fatourati_reference_unavailable",
        "failed",
        (),
        "CMI refuses to create the token: the invoices are given back at once",
    ),
    _payment(
        "payment_card_approval_during_release",
        "cancelled",
        ("cancel", "cmi_result"),
        "closing rule: CMI's approval while the payer's cancel releases: answered APPROVED, not captured",
    ),
    _payment(
        "payment_card_operator_cancel_during_settlement",
        "succeeded",
        ("cmi_result",),
        "closing rule: an operator's cancel while the approval settles: it settles and confirms",
    ),
    # --- cheque and bank transfer -----------------------------------------------------------------
    _payment(
        "payment_cheque_confirmed_subscription_renewed",
        "succeeded",
        ("finance_decision",),
        "finance confirms the cheque after 3 days; the subscription invoice renews the subscription",
    ),
    _payment("payment_transfer_confirmed", "succeeded", ("finance_decision",), "finance confirms a transfer"),
    _payment("payment_cheque_rejected", "failed", ("finance_decision",), "finance rejects the cheque"),
    _payment(
        "payment_transfer_unconfirmed_expired",
        "expired",
        (),
        "no decision within 30 days: invoices released, finance alerted by e-mail",
    ),
    _payment(
        "payment_cheque_cancelled_by_finance",
        "cancelled",
        ("cancel",),
        "finance blocks the invoice while the cheque waits: the attempt is cancelled",
    ),
    _payment(
        "payment_cheque_confirmed_by_update",
        "succeeded",
        ("finance_decide",),
        "closing rule: finance confirms by Update, answered accepted",
    ),
    _payment(
        "payment_cheque_confirmation_during_release",
        "expired",
        ("finance_decide",),
        "closing rule: finance confirms while the 30-day release runs: answered refused",
    ),
    # --- Amanpay cash code and Amanty -------------------------------------------------------------
    _payment("payment_cash_code_paid", "succeeded", ("amanpay_result",), "the code is paid at Tashilat"),
    _payment(
        "payment_cash_code_expired",
        "expired",
        (),
        "72 hours without payment: the code is cancelled at Amanpay, the invoices released",
    ),
    _payment(
        "payment_cash_code_paid_late",
        "expired",
        ("amanpay_result",),
        "paid at the counter while the expired code is being cancelled: refused (unapplied money)",
    ),
    _payment("payment_amanty_paid", "succeeded", ("amanpay_result",), "paid from the Amanty wallet"),
    _payment(
        "payment_amanty_refused_then_paid",
        "succeeded",
        ("amanpay_result", "amanpay_result"),
        "insufficient balance, then paid",
    ),
    _payment(
        "payment_amanty_refused_then_cancelled",
        "cancelled",
        ("amanpay_result", "amanpay_result"),
        "insufficient balance, then the payer cancels on Amanty",
    ),
    _payment("payment_amanty_expired", "expired", (), "the Amanty page is abandoned"),
    # --- PayDirect --------------------------------------------------------------------------------
    _payment("payment_paydirect_right_code", "succeeded", ("sms_code",), "the right SMS code at once"),
    _payment(
        "payment_paydirect_wrong_codes_expired",
        "expired",
        ("sms_code", "sms_code", "sms_code"),
        "three wrong codes (the code dies), then the 15-minute step times out",
    ),
    _payment(
        "payment_paydirect_resend_then_right_code",
        "succeeded",
        ("sms_code", "sms_resend", "sms_code"),
        "a wrong code, a new code a minute later, the right code",
    ),
    _payment(
        "payment_paydirect_dead_code_resent",
        "succeeded",
        ("sms_code", "sms_code", "sms_code", "sms_resend", "sms_code"),
        "three wrong codes kill the code; a new one is sent and is right",
    ),
    _payment(
        "payment_paydirect_code_expired_resent",
        "succeeded",
        ("sms_resend", "sms_code"),
        "the code expires after 10 minutes (a late submission is refused by the validator), resent",
    ),
    _payment(
        "payment_paydirect_contract_refused",
        "failed",
        (),
        "the bank refuses the contract: the invoices are given back at once",
    ),
    _payment("payment_paydirect_cancelled_by_payer", "cancelled", ("cancel",), "the payer cancels"),
    # --- the closing rule on the cash, Fatourati and PayDirect channels, e-mail and notices together -
    _payment(
        "payment_paydirect_right_code_closing_rule",
        "succeeded",
        ("sms_code",),
        "closing rule: the right code, the bank's verification behind the partner lock, then settled",
    ),
    _payment(
        "payment_paydirect_cancelled_closing_rule",
        "cancelled",
        ("cancel",),
        "closing rule: the payer cancels; the closing flag is set before the release",
    ),
    _payment(
        "payment_cash_code_paid_closing_rule",
        "succeeded",
        ("amanpay_result",),
        "closing rule: the code paid at Tashilat, settled",
    ),
    _payment(
        "payment_cash_code_paid_late_closing_rule",
        "expired",
        ("amanpay_result",),
        "closing rule: paid at the counter while the expired code is cancelled: refused, unapplied money",
    ),
    _payment(
        "payment_fatourati_paid_closing_rule",
        "succeeded",
        ("fatourati_result",),
        "closing rule: paid at a bank, settled",
    ),
    _payment(
        "payment_fatourati_paid_late_closing_rule",
        "expired",
        ("fatourati_result",),
        "closing rule: a payment callback while the expired token is cancelled: unapplied",
    ),
    _payment(
        "payment_card_mail_and_notices_together",
        "succeeded",
        ("cmi_result", "emitter_acknowledged"),
        "mail-and-notices-together: the e-mail and ANP's notice side by side, paid_at the settlement's",
    ),
    # --- finance applies unapplied money ---------------------------------------------------------
    RecordedPath(
        "unapplied_applied",
        UNAPPLIED,
        "applied",
        ("outcome",),
        "Amanpay money applied to a PORTNET invoice: settled on its own channel, e-mail sent",
    ),
    RecordedPath(
        "unapplied_applied_emitter_acknowledged",
        UNAPPLIED,
        "applied",
        ("outcome", "emitter_acknowledged"),
        "Fatourati money applied to an ANP invoice: ANP acknowledges the settlement notice",
    ),
    RecordedPath(
        "unapplied_refused_invoice_held",
        UNAPPLIED,
        "refused",
        ("outcome",),
        "a live attempt holds the invoice: refused, nothing changed",
    ),
    # --- MARSA MAROC invoice requests -------------------------------------------------------------
    RecordedPath("marsa_request_completed", MARSA_REQUEST, "completed", (), "two pages of invoices"),
    RecordedPath(
        "marsa_request_failed", MARSA_REQUEST, "failed", (), "MARSA MAROC answers 401: failed, not retried"
    ),
    RecordedPath(
        "marsa_request_retried_then_completed",
        MARSA_REQUEST,
        "completed",
        (),
        "MARSA MAROC answers 503 twice, then the page",
    ),
    RecordedPath(
        "marsa_request_unavailable",
        MARSA_REQUEST,
        "failed",
        (),
        "MARSA MAROC stays down through every retry: failed as unavailable",
    ),
    # --- reconciliation ---------------------------------------------------------------------------
    RecordedPath(
        "reconciliation_run",
        RECONCILIATION,
        "completed",
        (),
        "a stuck callback delivered, an expired attempt paid at its partner, one partner unreachable",
    ),
)

BY_NAME: dict[str, RecordedPath] = {path.name: path for path in PATHS}

# The same paths recorded on the Temporal dev server too (the Temporal server itself, as `make run`
# runs it; the time-skipping test server is another implementation): those that need no timer to fire.
DEV_SERVER = "dev-server"
DEV_SERVER_PATHS: tuple[str, ...] = (
    "payment_card_approved",
    "payment_card_declined_then_approved",
    "payment_card_cancelled_by_payer",
    "payment_card_cancelled_by_operator",
    "payment_card_invoice_already_held",
    "payment_card_emitter_acknowledged",
    "payment_fatourati_paid",
    "payment_fatourati_paid_twice",
    "payment_fatourati_refused_then_paid",
    "payment_fatourati_cancelled_by_payer",
    "payment_cheque_confirmed_subscription_renewed",
    "payment_cheque_rejected",
    "payment_cash_code_paid",
    "payment_amanty_refused_then_paid",
    "payment_amanty_refused_then_cancelled",
    "payment_paydirect_right_code",
    "payment_paydirect_contract_refused",
    "payment_paydirect_right_code_closing_rule",
    "payment_cash_code_paid_closing_rule",
    "payment_fatourati_paid_closing_rule",
    "payment_card_mail_and_notices_together",
    "unapplied_applied",
    "unapplied_applied_emitter_acknowledged",
    "unapplied_refused_invoice_held",
    "marsa_request_completed",
    "marsa_request_failed",
    "marsa_request_retried_then_completed",
    "reconciliation_run",
)


def required_files() -> list[str]:
    """The file names that must be in tests/histories/ (older versions may sit next to them)."""
    return [f"{p.name}.json" for p in PATHS] + [f"{name}.{DEV_SERVER}.json" for name in DEV_SERVER_PATHS]


def path_of(file: Path) -> RecordedPath | None:
    """The path a history file records: ``<name>.json`` or ``<name>.<version>.json``."""
    return BY_NAME.get(file.name.split(".", 1)[0])
