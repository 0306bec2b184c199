"""The ledger and the partners as the history recorder sees them: controlled fakes.

Each fake is registered under the real activity's name, takes the real input type and returns the
real output type, so the recorded history (activity names, inputs, results, failures) is the one
production writes; a replay never runs activities, it reads their results from the history. The
fakes need no database and no partner, and do exactly what the scenario asked: refuse a
reservation, fail like MARSA MAROC, hold an activity until the scenario lets it go (to land a
callback in a precise window), tell the payer's SMS code.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.amanpay import AmanpayOrder, AmanpayOrderInput
from activities.cheque_transfer import DecisionLogInput, RenewalInput
from activities.cmi_card import (
    AUTHORISED,
    CAPTURED,
    CaptureWatch,
    CaptureWatchInput,
    CardCapture,
    CardOrderInput,
    CardOrderStatus,
    CmiFormInput,
)
from activities.emitters import EmitterNoticeInput
from activities.fatourati import FatouratiToken, TokenInput
from activities.mail import CodeEmailInput, EmailInput, ReferenceEmailInput
from activities.marsa_maroc import (
    MESSAGES,
    UNAUTHORIZED,
    MarsaInvoiceRow,
    MarsaPage,
    MarsaPageInput,
    MarsaUpsertInput,
    MarsaUpsertResult,
)
from activities.paydirect import PayDirectStart, PayDirectStartInput, PayDirectVerdict, PayDirectVerifyInput
from activities.reconciliation import AttemptCheck, Candidates, RunTotals
from activities.stuck_callbacks import CallbackCheck
from activities.types import (
    IssuedReceipt,
    MarkPaidInput,
    NextAction,
    ReleaseInput,
    Reservation,
    ReservedInvoice,
    ReserveInput,
    SettleInput,
    Settlement,
)
from activities.unapplied import MarkAppliedInput, UnappliedHold, UnappliedHoldInput
from portnet.protocols import amanpay as amanpay_protocol
from portnet.protocols import cmi as cmi_protocol
from portnet.settings import Settings
from tests.support.fakes import fake_watch

PORTNET = ("6110DOO116", "PORTNET")
ANP = ("611AGEN001", "ANP")


@dataclass(frozen=True)
class Company:
    id: int
    name: str
    customs_code: str


SATAA = Company(2, "SATAA IMPORT EXPORT SARL AU", "290240")
TMTA = Company(4, "TMTA", "1247")


@dataclass(frozen=True)
class LedgerInvoice:
    id: int
    number: str
    emitter: tuple[str, str]
    amount_ttc: str
    company: Company = SATAA

    @property
    def settles_directly(self) -> bool:
        return self.emitter == PORTNET


# The guide's invoice 00069321 (a PORTNET subscription), other PORTNET invoices and one of ANP's.
SUBSCRIPTION = LedgerInvoice(1, "00069321", PORTNET, "3600.00")
PORTNET_INVOICE = LedgerInvoice(7, "00094301", PORTNET, "1200.00")
PORTNET_OTHER = LedgerInvoice(8, "00094302", PORTNET, "5284.80")
ANP_INVOICE = LedgerInvoice(12, "2026AN00417", ANP, "18450.00")
INVOICES = {inv.id: inv for inv in (SUBSCRIPTION, PORTNET_INVOICE, PORTNET_OTHER, ANP_INVOICE)}
# The attempts reconciliation's recorded run looks at: one its partner says paid, one unreachable.
RECONCILED_PAID, RECONCILED_UNREACHABLE = "PN0000000000A1", "PN0000000000B2"


def otp_for(auth_ref: str, resends: int) -> str:
    """The six digits the bank's SMS carries for this authorization after ``resends`` resends."""
    return f"{int(hashlib.sha256(f'{auth_ref}:{resends}'.encode()).hexdigest(), 16) % 10**6:06d}"


@dataclass
class Plan:
    """What the partners and the ledger do for one payment attempt."""

    invoice_ids: list[int]
    refuse_reservation: bool = False
    refuse_token: bool = False
    refuse_contract: bool = False
    # What CMI holds for the approved card transaction when asked: captured (our POSTAUTH answer
    # reached it), authorised only (the answer was lost: PostAuth captures it), or nothing.
    cmi_holds: str = CAPTURED
    # (n, state): what CMI holds becomes ``state`` just before its n-th status query (1 for the first):
    # it read our POSTAUTH answer late (captured), or voided the authorisation.
    cmi_changes_at_query: tuple[int, str] | None = None
    cmi_queries: int = 0
    # Activities that wait, once started, until the scenario calls ``World.let_go``.
    held: set[str] = field(default_factory=set)


@dataclass
class UnappliedPlan:
    """Money finance applies: its channel and partner transaction, the invoice, a refusal or not."""

    invoice: LedgerInvoice
    channel: str
    transaction_id: str
    refuse_held_by: str | None = None  # the live attempt holding the invoice


@dataclass
class MarsaPlan:
    pages: list[list[MarsaInvoiceRow]]
    # The first ``busy_attempts`` attempts of page 1 get an HTTP 503 (retried by Temporal).
    busy_attempts: int = 0
    unauthorized: bool = False


@dataclass
class OtpState:
    payment_id: str
    resends: int = 0
    attempts_left: int = 3


@dataclass
class Hold:
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)


class World:
    """Plans per payment or request, and the fakes that follow them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.plans: dict[str, Plan] = {}
        self.marsa: dict[str, MarsaPlan] = {}
        self.unapplied: dict[int, UnappliedPlan] = {}
        self.otps: dict[str, OtpState] = {}
        self.notices: dict[str, asyncio.Event] = {}
        self.holds: dict[tuple[str, str], Hold] = {}
        self.marsa_ids: dict[str, int] = {}

    # --- what scenarios use ---------------------------------------------------------------------

    def plan(self, payment_id: str, plan: Plan) -> None:
        self.plans[payment_id] = plan
        for name in plan.held:
            self.holds[(name, payment_id)] = Hold()

    async def reached(self, name: str, payment_id: str, timeout: float = 30.0) -> None:
        await asyncio.wait_for(self.holds[(name, payment_id)].reached.wait(), timeout)

    def let_go(self, name: str, payment_id: str) -> None:
        self.holds[(name, payment_id)].released.set()

    def sms_code(self, payment_id: str) -> str:
        """The code on the payer's phone right now."""
        auth_ref, state = next((ref, s) for ref, s in self.otps.items() if s.payment_id == payment_id)
        return otp_for(auth_ref, state.resends)

    async def noticed(self, payment_id: str, timeout: float = 30.0) -> None:
        """Returns once a settlement notice of this payment went out to an emitter."""
        await asyncio.wait_for(self._notice_sent(payment_id).wait(), timeout)

    def _notice_sent(self, payment_id: str) -> asyncio.Event:
        return self.notices.setdefault(payment_id, asyncio.Event())

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.reserve_invoices,
            self.settle_payment,
            self.issue_receipt,
            self.release_invoices,
            self.mark_invoices_paid,
            self.build_card_form,
            self.check_card_capture,
            self.watch_card_capture,
            self.capture_card_payment,
            self.send_payment_email,
            self.send_settlement_notice,
            self.create_token,
            self.cancel_token,
            self.send_channel_email,
            self.record_declaration,
            self.log_finance_decision,
            self.renew_subscriptions,
            self.create_order,
            self.cancel_order,
            self.paydirect_start,
            self.paydirect_resend,
            self.paydirect_verify,
            self.send_code_email,
            self.fetch_invoice_page,
            self.upsert_invoices,
            self.find_reconciliation_candidates,
            self.reconcile_callback,
            self.reconcile_attempt,
            self.finish_reconciliation_run,
            self.hold_for_unapplied,
            self.mark_unapplied_applied,
        ]

    async def _pass(self, name: str, payment_id: str) -> None:
        hold = self.holds.get((name, payment_id))
        if hold is not None:
            hold.reached.set()
            await hold.released.wait()

    # --- reconciliation: one stuck callback, an expired attempt paid at its partner, one that fails ---

    @activity.defn(name="find_reconciliation_candidates")
    async def find_reconciliation_candidates(self, run_id: str) -> Candidates:
        return Candidates(callbacks=[41], attempts=[RECONCILED_PAID, RECONCILED_UNREACHABLE])

    @activity.defn(name="reconcile_callback")
    async def reconcile_callback(self, check: CallbackCheck) -> str:
        return "delivered"

    @activity.defn(name="reconcile_attempt")
    async def reconcile_attempt(self, check: AttemptCheck) -> list[str]:
        if check.payment_id == RECONCILED_UNREACHABLE:
            raise ApplicationError("partner unreachable", non_retryable=True)
        return ["expired_attempt:unapplied", "orphan_hold:released"]

    @activity.defn(name="finish_reconciliation_run")
    async def finish_reconciliation_run(self, totals: RunTotals) -> int:
        return 3

    # --- the ledger -----------------------------------------------------------------------------

    @activity.defn(name="reserve_invoices")
    async def reserve_invoices(self, inp: ReserveInput) -> Reservation:
        plan = self.plans[inp.payment_id]
        invoices = [INVOICES[i] for i in inp.invoice_ids]
        if plan.refuse_reservation:
            labels = ", ".join(f"{inv.number} (En cours de paiement)" for inv in invoices)
            return Reservation(
                ok=False, error_code="conflict", error=f"Facture(s) non réglable(s): {labels}."
            )
        company = invoices[0].company
        return Reservation(
            ok=True,
            amount=f"{sum((Decimal(inv.amount_ttc) for inv in invoices), Decimal('0')):.2f}",
            invoices=[
                ReservedInvoice(
                    inv.id, inv.number, inv.emitter[0], inv.emitter[1], inv.amount_ttc, inv.settles_directly
                )
                for inv in sorted(invoices, key=lambda inv: inv.number)
            ],
            client_name=company.name,
            client_code=company.customs_code,
        )

    @activity.defn(name="settle_payment")
    async def settle_payment(self, inp: SettleInput) -> Settlement:
        await self._pass("settle_payment", inp.payment_id)
        awaiting: dict[str, list[str]] = {}
        for invoice_id in self.plans[inp.payment_id].invoice_ids:
            invoice = INVOICES[invoice_id]
            if not invoice.settles_directly:
                awaiting.setdefault(invoice.emitter[0], []).append(invoice.number)
        return Settlement(
            receipt_document_id=int(hashlib.sha256(inp.payment_id.encode()).hexdigest()[:5], 16),
            receipt_number=f"REC-{inp.payment_id}",
            awaiting_emitters=awaiting,
        )

    @activity.defn(name="issue_receipt")
    async def issue_receipt(self, inp: SettleInput) -> IssuedReceipt:
        return IssuedReceipt(
            document_id=int(hashlib.sha256(inp.payment_id.encode()).hexdigest()[:5], 16),
            receipt_number=f"REC-{inp.payment_id}",
        )

    @activity.defn(name="release_invoices")
    async def release_invoices(self, inp: ReleaseInput) -> None:
        await self._pass("release_invoices", inp.payment_id)
        return None

    @activity.defn(name="mark_invoices_paid")
    async def mark_invoices_paid(self, inp: MarkPaidInput) -> None:
        return None

    @activity.defn(name="record_declaration")
    async def record_declaration(self, payment_id: str, user_name: str, declaration: dict[str, str]) -> None:
        return None

    @activity.defn(name="log_finance_decision")
    async def log_finance_decision(self, inp: DecisionLogInput) -> None:
        return None

    @activity.defn(name="renew_subscriptions")
    async def renew_subscriptions(self, inp: RenewalInput) -> str | None:
        if SUBSCRIPTION.id not in self.plans[inp.payment_id].invoice_ids:
            return None
        confirmed = date.fromisoformat(inp.confirmed_on[:10])
        return confirmed.replace(year=confirmed.year + 1).isoformat()

    # --- unapplied money -------------------------------------------------------------------------

    @activity.defn(name="hold_for_unapplied")
    async def hold_for_unapplied(self, inp: UnappliedHoldInput) -> UnappliedHold:
        plan = self.unapplied[inp.unapplied_id]
        invoice = plan.invoice
        if plan.refuse_held_by is not None:
            return UnappliedHold(
                ok=False,
                error_code="held",
                error=(
                    f"La facture {invoice.number} est en cours de paiement (tentative "
                    f"{plan.refuse_held_by}) : réessayez une fois cette tentative terminée."
                ),
            )
        payment_id = f"PNU{inp.unapplied_id:09d}"
        self.plans[payment_id] = Plan([invoice.id])
        return UnappliedHold(
            ok=True,
            payment_id=payment_id,
            channel=plan.channel,
            transaction_id=plan.transaction_id,
            paid_at="2026-11-29T10:00:00",
            amount=invoice.amount_ttc,
            invoice_id=invoice.id,
            invoice_number=invoice.number,
            settles_directly=invoice.settles_directly,
            payer_name=invoice.company.name,
            payer_email="comptabilite@sataa.ma",
        )

    @activity.defn(name="mark_unapplied_applied")
    async def mark_unapplied_applied(self, inp: MarkAppliedInput) -> None:
        return None

    # --- CMI card and Fatourati -----------------------------------------------------------------

    @activity.defn(name="build_card_form")
    async def build_card_form(self, inp: CmiFormInput) -> NextAction:
        s = self.settings
        base = s.public_base_url.rstrip("/")
        fields = cmi_protocol.build_payment_fields(
            client_id=s.cmi_client_id,
            store_key=s.cmi_store_key,
            oid=inp.payment_id,
            amount=inp.amount,
            rnd=hashlib.sha256(inp.payment_id.encode()).hexdigest()[:20],
            email=inp.payer.email,
            bill_to_name=inp.payer.name,
            bill_to_company=inp.client_name,
            tel=inp.payer.phone,
            lang=inp.lang,
            session_timeout=s.cmi_session_timeout_seconds,
            ok_url=f"{base}/paiements/{inp.payment_id}/retour",
            fail_url=f"{base}/paiements/{inp.payment_id}/retour",
            shop_url=f"{base}/paiements/{inp.payment_id}/annuler",
            callback_url=f"{base}/api/v1/callbacks/cmi",
        )
        return NextAction(type="redirect_form", url=s.cmi_gateway_url, fields=fields)

    @activity.defn(name="check_card_capture")
    async def check_card_capture(self, inp: CardOrderInput) -> CardOrderStatus:
        plan = self.plans[inp.payment_id]
        plan.cmi_queries += 1
        if plan.cmi_changes_at_query is not None and plan.cmi_changes_at_query[0] == plan.cmi_queries:
            plan.cmi_holds = plan.cmi_changes_at_query[1]
        state = plan.cmi_holds
        return CardOrderStatus(state, {CAPTURED: "C", AUTHORISED: "A"}.get(state, "D"))

    @activity.defn(name="watch_card_capture")
    async def watch_card_capture(self, inp: CaptureWatchInput) -> CaptureWatch:
        order = CardOrderInput(inp.payment_id, inp.trans_id)
        return await fake_watch(lambda: self.check_card_capture(order), inp)

    @activity.defn(name="capture_card_payment")
    async def capture_card_payment(self, inp: CardOrderInput) -> CardCapture:
        plan = self.plans[inp.payment_id]
        if plan.cmi_holds != AUTHORISED:
            return CardCapture(False, "", "99")
        plan.cmi_holds = CAPTURED
        digits = int(hashlib.sha256(inp.trans_id.encode()).hexdigest(), 16) % 10**5
        return CardCapture(True, f"26333PSTA{digits:05d}", "00")

    @activity.defn(name="create_token")
    async def create_token(self, inp: TokenInput) -> FatouratiToken:
        if self.plans[inp.payment_id].refuse_token:
            raise ApplicationError(
                'Fatourati refused: HTTP 400 {"code":"INVALID_CREANCIER"}',
                type="BusinessRefusal",
                non_retryable=True,
            )
        digits = int(hashlib.sha256(inp.payment_id.encode()).hexdigest(), 16) % 10**9
        return FatouratiToken(f"1089{digits:09d}", inp.expires_at)

    @activity.defn(name="cancel_token")
    async def cancel_token(self, payment_id: str) -> str:
        await self._pass("cancel_token", payment_id)
        return "CANCELLED"

    @activity.defn(name="send_channel_email")
    async def send_channel_email(self, inp: ReferenceEmailInput) -> None:
        return None

    # --- mail and emitters ----------------------------------------------------------------------

    @activity.defn(name="send_payment_email")
    async def send_payment_email(self, inp: EmailInput) -> None:
        return None

    @activity.defn(name="send_settlement_notice")
    async def send_settlement_notice(self, inp: EmitterNoticeInput) -> str:
        self._notice_sent(inp.payment_id).set()
        return f"{inp.payment_id}-{inp.emitter_code}"

    # --- Amanpay and PayDirect ------------------------------------------------------------------

    @activity.defn(name="create_order")
    async def create_order(self, inp: AmanpayOrderInput) -> AmanpayOrder:
        base = self.settings.amanpay_base_url.rstrip("/")
        if inp.method == "code":
            digits = f"{int(hashlib.sha256(inp.payment_id.encode()).hexdigest(), 16) % 10**12:012d}"
            expires = activity.info().scheduled_time + timedelta(seconds=inp.ttl_seconds)
            return AmanpayOrder(
                ok=True,
                code=f"{digits[:2]} {digits[2:6]} {digits[6:9]}-{digits[9:]}",
                expires_at=expires.isoformat(timespec="seconds"),
            )
        return AmanpayOrder(ok=True, redirect_url=f"{base}/amanty/pay/{inp.payment_id}")

    @activity.defn(name="cancel_order")
    async def cancel_order(self, payment_id: str) -> str:
        await self._pass("cancel_order", payment_id)
        return "cancelled"

    @activity.defn(name="send_code_email")
    async def send_code_email(self, inp: CodeEmailInput) -> None:
        return None

    @activity.defn(name="paydirect_start")
    async def paydirect_start(self, inp: PayDirectStartInput) -> PayDirectStart:
        if self.plans[inp.payment_id].refuse_contract:
            return PayDirectStart(
                ok=False, error_code="cin_mismatch", error="La CIN ne correspond pas au contrat PayDirect."
            )
        auth_ref = "PDA" + hashlib.sha256(inp.payment_id.encode()).hexdigest()[:10].upper()
        self.otps[auth_ref] = OtpState(inp.payment_id)
        return PayDirectStart(ok=True, auth_ref=auth_ref, attempts_left=3)

    @activity.defn(name="paydirect_resend")
    async def paydirect_resend(self, auth_ref: str) -> int:
        state = self.otps[auth_ref]
        state.resends += 1
        state.attempts_left = 3
        return state.attempts_left

    @activity.defn(name="paydirect_verify")
    async def paydirect_verify(self, inp: PayDirectVerifyInput) -> PayDirectVerdict:
        code = amanpay_protocol.open_otp(self.settings.secret_key, inp.payment_id, inp.sealed)
        if code is None:
            raise ApplicationError("sealed code rejected", type="BusinessRefusal", non_retryable=True)
        state = self.otps[inp.auth_ref]
        if code == otp_for(inp.auth_ref, state.resends):
            ref = hashlib.sha256(inp.request_id.encode()).hexdigest()[:10].upper()
            return PayDirectVerdict("authorized", state.attempts_left, f"BP{ref}", ref[:6])
        state.attempts_left -= 1
        return PayDirectVerdict("dead" if state.attempts_left <= 0 else "wrong", max(state.attempts_left, 0))

    # --- MARSA MAROC ----------------------------------------------------------------------------

    @activity.defn(name="fetch_invoice_page")
    async def fetch_invoice_page(self, inp: MarsaPageInput) -> MarsaPage:
        plan = self.marsa[inp.request_id]
        if plan.unauthorized:
            raise ApplicationError(MESSAGES[UNAUTHORIZED], "HTTP 401", type=UNAUTHORIZED, non_retryable=True)
        if inp.page == 1 and activity.info().attempt <= plan.busy_attempts:
            raise RuntimeError("MARSA MAROC answered HTTP 503")
        items = plan.pages[inp.page - 1]
        return MarsaPage(
            page=inp.page, pages=len(plan.pages), total=sum(len(p) for p in plan.pages), items=items
        )

    @activity.defn(name="upsert_invoices")
    async def upsert_invoices(self, inp: MarsaUpsertInput) -> MarsaUpsertResult:
        ids = [self.marsa_ids.setdefault(row.number, 5000 + len(self.marsa_ids)) for row in inp.items]
        return MarsaUpsertResult(invoice_ids=ids, created=len(ids))
