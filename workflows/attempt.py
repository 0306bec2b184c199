"""The payment attempt as its workflow keeps it: what the payer and finance see, and what the ledger
must be told.

An ``Attempt`` is owned by one ``PaymentWorkflow`` and lent to its channel: it holds the view (what
the ``state`` query answers), the ``Approval`` once a partner took the money, the declines, the
cancel reason and whether the invoices are held; it changes the status (and its search attribute)
and runs the ledger activities that hold, settle and release the invoices. It runs inside the
workflow: workflow time, I/O only through activities.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import ledger, receipts
    from activities.types import (
        Decline,
        NextAction,
        ReleaseInput,
        Reservation,
        ReserveInput,
        SettleInput,
        Settlement,
    )
    from portnet.statuses import PaymentStatus
    from workflows import details
    from workflows.policies import LEDGER_RETRY, LEDGER_TIMEOUT, RECEIPT_GIVE_UP
    from workflows.types import PaymentInput, PaymentView

# The patch behind the closing rule (see ``Attempt.close``): attempts started before it keep the old
# behaviour when they replay.
CLOSING_RULE = "one-closing-rule"
# Since this rule the settlement writes no receipt: ``issue_receipt`` lays it out and stores it just
# after, so "succeeded" no longer waits for fpdf2 (see ``Attempt._settle``).
RECEIPT_AFTER_SETTLEMENT = "receipt-after-settlement"

# Every rule patched in so far, under one marker. Each ``workflow.patched`` id writes a marker and a
# TemporalChangeVersion search attribute upsert (two history events) into every attempt that asks;
# an attempt begun on a set records that set's id and asks none of its rules (``Attempt.patched``).
# Attempts begun before any set still ask, and take, each rule as they did. A rule patched in later
# comes with a new set naming every rule so far; the older sets stay, newest first, for the attempts
# begun on them, until none of those can still be running (the longest, a cheque: 30 days + 7).
RULE_SETS: dict[str, frozenset[str]] = {
    "payment-rules-2026-12c": frozenset(
        {
            CLOSING_RULE,
            "cmi-capture-confirmed",
            "cmi-capture-early-look",
            "mail-and-notices-together",
            "cmi-capture-prompt-look",
            "cmi-capture-watch",
            RECEIPT_AFTER_SETTLEMENT,
        }
    ),
    "payment-rules-2026-12b": frozenset(
        {
            CLOSING_RULE,
            "cmi-capture-confirmed",
            "cmi-capture-early-look",
            "mail-and-notices-together",
            "cmi-capture-prompt-look",
            "cmi-capture-watch",
        }
    ),
    "payment-rules-2026-12": frozenset(
        {
            CLOSING_RULE,
            "cmi-capture-confirmed",
            "cmi-capture-early-look",
            "mail-and-notices-together",
            "cmi-capture-prompt-look",
        }
    ),
    "payment-rules-2026-11": frozenset(
        {CLOSING_RULE, "cmi-capture-confirmed", "cmi-capture-early-look", "mail-and-notices-together"}
    ),
}
CURRENT_RULES = next(iter(RULE_SETS))
IN_CURRENT_RULES = RULE_SETS[CURRENT_RULES]


def rules_begun_on() -> frozenset[str]:
    """The rules of the set this attempt began on (none before the sets). Asked newest first at the
    start of the run: a new attempt records the current set's marker only; one begun on an older set
    replays without the newer markers and finds its own."""
    for name, rules in RULE_SETS.items():
        if workflow.patched(name):
            return rules
    return frozenset()


SA_CHANNEL = SearchAttributeKey.for_keyword("PaymentChannel")
SA_STATUS = SearchAttributeKey.for_keyword("PaymentStatus")
SA_CLIENT = SearchAttributeKey.for_keyword("ClientCode")
SA_EMITTER = SearchAttributeKey.for_keyword("EmitterCode")
SA_INVOICES = SearchAttributeKey.for_keyword_list("InvoiceNumbers")
SA_AMOUNT = SearchAttributeKey.for_float("AmountTTC")


def search_attributes(
    inp: PaymentInput, client_code: str, emitters: list[str], numbers: list[str], amount: str
) -> TypedSearchAttributes:
    """Start-time attributes, so finance can find an attempt before its first activity ran."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_CHANNEL, inp.channel),
            SearchAttributePair(SA_STATUS, PaymentStatus.STARTED.value),
            SearchAttributePair(SA_CLIENT, client_code),
            SearchAttributePair(SA_EMITTER, ",".join(sorted(set(emitters)))),
            SearchAttributePair(SA_INVOICES, numbers),
            # A search index for the Web UI only, never read back as money.
            SearchAttributePair(SA_AMOUNT, float(amount)),
        ]
    )


@dataclass(frozen=True)
class Approval:
    """A partner took the money, whatever the channel: what the settlement records.

    Once an attempt has one it settles; nothing that arrives later undoes it.
    """

    transaction_id: str
    auth_code: str | None = None
    masked_pan: str | None = None


class Attempt:
    def __init__(self, inp: PaymentInput) -> None:
        self.inp = inp
        self.view: PaymentView | None = None
        self.approval: Approval | None = None
        self.declines: list[Decline] = []
        self.cancel_reason: str | None = None
        # True while the invoices are held by this attempt: what a cancellation must give back.
        self.holding = False
        # The payer has something to do, or the attempt failed: what the ``ready`` Update waits for.
        self.ready = False
        # The closing rule applies (set by the workflow's run from ``workflow.patched``).
        self.closing_rule = False
        # The rules of the set the attempt began on (set by the workflow's run: ``rules_begun_on``).
        self.rules: frozenset[str] = frozenset()
        # Set, before anything awaits, once a release or a partner cancel is about to start: from then
        # on no handler calls a partner or accepts money (an approval already accepted still settles).
        self.closing = False
        # When the settlement was recorded (the emitters' notices carry it as the payment time).
        self.settled_at: str | None = None
        # Held by every handler while it calls a partner, and by ``close`` to let that call end.
        self.partner_lock = asyncio.Lock()
        # The reservation, the release and the settlement run once each, shielded from an operator's cancel.
        self.reserving: asyncio.Task[Reservation] | None = None
        self.releasing: asyncio.Task[None] | None = None
        self.settling: asyncio.Task[Settlement] | None = None
        # The receipt issued after the settlement (rule ``receipt-after-settlement``), while it runs.
        self.receipt: asyncio.Task[None] | None = None

    # --- reads ------------------------------------------------------------------------------------

    @property
    def shown(self) -> PaymentView:
        """The view, once the attempt has begun (every channel step runs after that)."""
        assert self.view is not None
        return self.view

    def awaits_payer(self) -> bool:
        return self.view is not None and self.view.status == PaymentStatus.AWAITING_PAYER.value

    def takes_money(self) -> bool:
        """The attempt waits for its payer and nothing has begun to close it."""
        return self.awaits_payer() and not self.closing

    def decided(self) -> bool:
        """The money was taken or the attempt cancelled: the channel stops waiting."""
        return self.approval is not None or self.cancel_reason is not None

    def patched(self, rule: str) -> bool:
        """``workflow.patched(rule)``, without a marker of its own on an attempt begun on a rule set
        that includes ``rule`` (RULE_SETS): the same answer, two history events fewer per rule."""
        if rule in self.rules:
            return True
        return workflow.patched(rule)

    # --- changes ----------------------------------------------------------------------------------

    def begin(self) -> PaymentView:
        self.view = PaymentView(
            id=self.inp.payment_id,
            workflow_id=workflow.info().workflow_id,
            status=PaymentStatus.STARTED.value,
            channel=self.inp.channel,
            amount="0.00",
            invoice_ids=list(self.inp.invoice_ids),
        )
        self.show_phase()
        return self.view

    def show_phase(self) -> None:
        """The Web UI's current details: what the attempt waits for, or how it ended (details.py)."""
        workflow.set_current_details(details.payment_phase(self.shown, workflow.now(), self.inp.declaration))

    def set_status(self, status: PaymentStatus) -> None:
        self.shown.status = status.value
        workflow.upsert_search_attributes([SA_STATUS.value_set(status.value)])
        self.show_phase()

    def awaiting(self, status: PaymentStatus, action: NextAction, deadline: datetime) -> None:
        """The payer (or finance) has something to do, until ``deadline``: the API may answer."""
        view = self.shown
        view.next_action = action
        view.deadline = deadline.isoformat()
        self.set_status(status)
        self.ready = True

    def emitters_awaited(self, pending: list[str]) -> None:
        """The emitters whose acknowledgement the settled attempt still waits for."""
        self.shown.awaiting_emitters = pending
        self.show_phase()

    def approve(self, approval: Approval) -> None:
        """A partner message took the money: the attempt now settles, whatever else arrives."""
        self.approval = approval
        self.set_status(PaymentStatus.AWAITING_CONFIRMATION)

    def decline(self, decline: Decline, shown: str) -> None:
        """A refusal the payer may try again after; logged with the invoices at the end."""
        self.declines.append(decline)
        if self.view is not None:
            self.view.declines = len(self.declines)
            self.view.last_decline = shown
            self.show_phase()

    def cancel(self, reason: str) -> None:
        """The first reason given wins; the channel gives the invoices back when it sees it. Under the
        closing rule a cancel after an accepted approval, or once the attempt is closing, changes nothing."""
        if self.closing_rule and (self.approval is not None or self.closing):
            workflow.logger.info("cancel of %s ignored: the attempt is already decided", self.inp.payment_id)
            return
        if self.cancel_reason is None:
            self.cancel_reason = reason

    def disown(self) -> None:
        """The partner disowned the approval (it holds no money for it): the attempt may be released."""
        self.approval = None

    async def close(self) -> bool:
        """The one closing rule: no handler calls a partner or accepts money from now on. The flag is
        set before anything awaits; then the partner call in flight, if any, is let finish, since its
        verdict counts. True: release the invoices; False: an approval was accepted, settle."""
        self.closing = True
        async with self.partner_lock:
            pass
        return self.approval is None

    # --- the ledger -------------------------------------------------------------------------------

    async def reserve(self) -> Reservation:
        """Holds every invoice of the attempt, or none; a refusal ends the attempt ``failed``. Under the
        closing rule an operator's cancel lets it finish, so that what it held is known and released."""
        if self.closing_rule:
            self.reserving = asyncio.ensure_future(self._reserve())
            return await asyncio.shield(self.reserving)
        return await self._reserve()

    async def _reserve(self) -> Reservation:
        inp, view = self.inp, self.shown
        reservation = await workflow.execute_activity(
            ledger.reserve_invoices,
            ReserveInput(
                payment_id=inp.payment_id,
                workflow_id=view.workflow_id,
                channel=inp.channel,
                company_id=inp.company_id,
                user_id=inp.user_id,
                user_name=inp.user_name,
                invoice_ids=inp.invoice_ids,
                payer_email=inp.payer.email,
            ),
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
            summary=details.reserving(workflow.info().typed_search_attributes.get(SA_INVOICES) or []),
        )
        if not reservation.ok:
            view.error_code, view.error = reservation.error_code, reservation.error
            self.set_status(PaymentStatus.FAILED)
            self.ready = True
            return reservation
        self.holding = True
        view.amount = reservation.amount
        view.invoice_numbers = [i.number for i in reservation.invoices]
        return reservation

    async def fail(self, error_code: str, message: str) -> None:
        """The attempt cannot start (partner down or refusing): invoices back, the payer told why."""
        view = self.shown
        view.error_code, view.error = error_code, message
        await self.release(PaymentStatus.FAILED, message)
        self.ready = True

    async def release(self, status: PaymentStatus, reason: str) -> None:
        """No money: the invoices go back to what they were, the attempt ends with ``status``. Under the
        closing rule it runs once (a second call joins it), never after an accepted approval, and an
        operator's cancel does not interrupt it."""
        if not self.closing_rule:
            await self._release(status, reason)
            return
        self.closing = True
        assert self.approval is None, "an accepted approval is never released"
        if self.releasing is None:
            self.releasing = asyncio.ensure_future(self._release(status, reason))
        await asyncio.shield(self.releasing)

    async def _release(self, status: PaymentStatus, reason: str) -> None:
        inp, view = self.inp, self.shown
        view.next_action = None
        await workflow.execute_activity(
            ledger.release_invoices,
            ReleaseInput(inp.payment_id, inp.channel, inp.user_name, status.value, reason, self.declines),
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
            summary=details.releasing(status.value),
        )
        self.holding = False
        view.error = view.error or reason
        self.set_status(status)

    async def settle(self, approval: Approval) -> Settlement:
        """The money is in: invoices confirmed (or paid), payment data and receipt written. Under the
        closing rule it runs once (a second call joins it) and an operator's cancel does not interrupt it."""
        if not self.closing_rule:
            return await self._settle(approval)
        if self.settling is None:
            self.settling = asyncio.ensure_future(self._settle(approval))
        return await asyncio.shield(self.settling)

    async def _settle(self, approval: Approval) -> Settlement:
        inp, view = self.inp, self.shown
        self.approval = approval
        view.next_action = None
        view.transaction_id = approval.transaction_id
        self.settled_at = workflow.now().isoformat()
        # Only attempts begun on a set that includes the rule: it adds no marker to older attempts,
        # which keep the receipt stored with their settlement wherever they are.
        receipt_after = RECEIPT_AFTER_SETTLEMENT in self.rules
        settled = SettleInput(
            payment_id=inp.payment_id,
            channel=inp.channel,
            user_name=inp.user_name,
            transaction_id=approval.transaction_id,
            auth_code=approval.auth_code,
            masked_pan=approval.masked_pan,
            paid_at=self.settled_at,
            payer=inp.payer,
            declines=self.declines,
            receipt_after=receipt_after,
        )
        settlement = await workflow.execute_activity(
            ledger.settle_payment,
            settled,
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
            summary=details.settling(inp.channel),
        )
        self.holding = False
        if self.closing_rule and not settlement.applied:
            # The invoices had been given back: the ledger kept the money as unapplied, for finance.
            view.error_code = "unapplied"
            view.error = f"Paiement reçu après la libération des factures ({settlement.receipt_number})"
            self.set_status(PaymentStatus.FAILED)
            return settlement
        view.receipt_document_id = settlement.receipt_document_id or None
        view.awaiting_emitters = sorted(settlement.awaiting_emitters)
        self.set_status(PaymentStatus.SUCCEEDED)
        if receipt_after:
            # Its own task: the emitters' notices (their "paid") do not wait for the PDF; only the
            # confirmation e-mail, which attaches it, does (``receipt_issued``).
            self.receipt = asyncio.ensure_future(self._issue_receipt(settled))
        return settlement

    async def _issue_receipt(self, settled: SettleInput) -> None:
        """The receipt, once the settlement has committed (the payer already sees "succeeded"). Nothing
        here can undo the settlement: a receipt that still cannot be issued after a day of retries is
        left to finance (the Web UI shows the failed activity), and the e-mail goes without it."""
        try:
            issued = await workflow.execute_activity(
                receipts.issue_receipt,
                settled,
                start_to_close_timeout=LEDGER_TIMEOUT,
                schedule_to_close_timeout=RECEIPT_GIVE_UP,
                retry_policy=LEDGER_RETRY,
                summary=details.issuing_receipt(),
            )
        except ActivityError:
            workflow.logger.warning("receipt of %s not issued", settled.payment_id)
            return
        self.shown.receipt_document_id = issued.document_id

    async def receipt_issued(self) -> None:
        """Returns once the receipt issued after the settlement is stored (or given up); nothing to
        wait for on older rules. Shielded: an operator's cancel does not interrupt the receipt."""
        if self.receipt is not None:
            await asyncio.shield(self.receipt)
