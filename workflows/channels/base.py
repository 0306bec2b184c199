"""The small protocol every payment channel follows inside ``PaymentWorkflow``.

The workflow holds the invoices, then asks its channel for two things:

- ``start(reservation)``: what the payer does next (a card form, a reference, a code, a page, or
  nothing while finance checks) and until when, or why the attempt cannot start (``Failed``);
- ``collect()``: wait for the partner, the payer or finance until that deadline and say how it
  ended: ``Paid(approval)`` (the workflow settles, e-mails and notifies the emitters) or
  ``Released(status, reason)`` (the workflow gives the invoices back, then calls ``after_release``).

A channel takes the partner and payer messages meant for it through the methods below, which the
workflow's Updates and Signals call in one line; the defaults here answer a message meant for
another channel (a CMI callback on an Amanpay attempt, say) without touching the attempt. A channel
runs inside the workflow: workflow time, I/O only through activities; the commands it issues
(activities, timers) are part of recorded histories.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.types import NextAction, Reservation
    from portnet.statuses import PaymentStatus
    from workflows.attempt import Approval, Attempt
    from workflows.types import (
        AmanpayDecision,
        AmanpayNotice,
        CmiDecision,
        CmiResult,
        FatouratiDecision,
        FatouratiResult,
        FinanceDecision,
        FinanceVerdict,
        SealedCode,
        SmsCodeOutcome,
        SmsResendOutcome,
    )


@dataclass(frozen=True)
class PayerAction:
    """What ``start`` gives the payer: the next action, until when, and the attempt's status meanwhile."""

    action: NextAction
    deadline: datetime
    status: PaymentStatus = PaymentStatus.AWAITING_PAYER


@dataclass(frozen=True)
class Failed:
    """The attempt cannot start: a stable code and the French sentence the payer reads."""

    error_code: str
    message: str


@dataclass(frozen=True)
class Paid:
    approval: Approval


@dataclass(frozen=True)
class Released:
    status: PaymentStatus  # expired | cancelled | failed
    reason: str


Outcome = Paid | Released

NO_SMS_CODE = "Aucun code SMS n'est attendu pour ce paiement."


class PaymentChannel(ABC):
    """One way of paying. Subclasses: one per channel, registered in workflows/channels/__init__.py."""

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt

    @abstractmethod
    async def start(self, reservation: Reservation) -> PayerAction | Failed: ...

    @abstractmethod
    async def collect(self) -> Outcome: ...

    async def confirm(self, approval: Approval) -> Outcome:
        """Whether an accepted approval holds money before the attempt settles on it outside ``collect``
        (an operator's cancel arrived first). Most channels: it does. A channel whose partner may still
        disown it calls ``Attempt.disown`` and answers ``Released``."""
        return Paid(approval)

    async def after_release(self, released: Released) -> None:
        """Runs once ``collect``'s ``Released`` gave the invoices back (most channels: nothing)."""
        return None

    # --- messages for one channel, answered here when the attempt is of another -------------------

    def cmi_result(self, result: CmiResult) -> CmiDecision:
        return CmiDecision("APPROVED", "not a card attempt: not captured")

    def fatourati_result(self, result: FatouratiResult) -> FatouratiDecision:
        return FatouratiDecision("unapplied", "not a Fatourati attempt: money kept for finance")

    def amanpay_result(self, notice: AmanpayNotice) -> AmanpayDecision:
        return AmanpayDecision(False, "not an Amanpay attempt")

    def finance_decision(self, decision: FinanceDecision) -> None:
        """Finance decides only on a declared cheque or transfer; elsewhere the decision is ignored."""
        return None

    def finance_decide(self, decision: FinanceDecision) -> FinanceVerdict:
        return FinanceVerdict(False, "Seuls les chèques et virements attendent une décision de la finance.")

    def validate_sms_code(self, code: SealedCode) -> None:
        raise ApplicationError(NO_SMS_CODE, type="wrong_state")

    async def sms_code(self, code: SealedCode) -> SmsCodeOutcome:
        raise ApplicationError(NO_SMS_CODE, type="wrong_state")

    def validate_sms_resend(self) -> None:
        raise ApplicationError(NO_SMS_CODE, type="wrong_state")

    async def sms_resend(self) -> SmsResendOutcome:
        raise ApplicationError(NO_SMS_CODE, type="wrong_state")


class Unavailable(PaymentChannel):
    """A channel this build does not take: the API refuses it first; an attempt started anyway fails."""

    async def start(self, reservation: Reservation) -> PayerAction | Failed:
        return Failed("channel_unavailable", f"Canal non disponible: {self.attempt.inp.channel}")

    async def collect(self) -> Outcome:
        raise AssertionError("an unavailable channel never starts")
