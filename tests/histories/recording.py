"""What a recording scenario works with: the Temporal server, the fakes, and the web layer's moves.

Attempts are started as the API starts them (update-with-start on ``ready``, the same input and
search attributes) and the partners' callbacks reach the workflow as the web layer sends them
(same Update or Signal, same argument type, fields filled as the callback routes fill them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment

from portnet.protocols import amanpay as amanpay_protocol
from portnet.settings import Settings
from portnet.statuses import Channel
from tests.histories.manifest import RecordedPath
from tests.histories.world import Company, LedgerInvoice, Plan, World
from workflows.attempt import search_attributes
from workflows.payment import PaymentWorkflow
from workflows.types import AmanpayPayer, AmanpaySettings, PayerInfo, PaymentInput, PaymentView, SealedCode
from workflows.unapplied import ApplyOutcome, ApplyUnappliedInput, ApplyUnappliedWorkflow

PaymentHandle = WorkflowHandle[PaymentWorkflow, PaymentView]
ApplicationHandle = WorkflowHandle[ApplyUnappliedWorkflow, ApplyOutcome]

# The user who pays in every recorded attempt: SATAA's client account of the demo data.
USER_ID, USER_NAME, USER_EMAIL = 3, "sataa", "comptabilite@sataa.ma"
# Finance's account of the demo data, who applies unapplied money.
FINANCE_USER_ID = 6


def recording_settings() -> Settings:
    """The shipped defaults, whatever the environment says: a recording does not depend on who runs it."""
    return Settings.model_construct(portnet_env="development")


@dataclass
class Recording:
    env: WorkflowEnvironment
    world: World
    settings: Settings
    task_queue: str

    @property
    def client(self) -> Client:
        return self.env.client

    # --- time -----------------------------------------------------------------------------------

    async def skip(self, duration: timedelta) -> None:
        """Moves the server's clock on (timers due meanwhile fire).

        The dev server's clock is the real one: there the payer is simply quick (only the paths that
        need no timer to fire are recorded on it, see manifest.DEV_SERVER_PATHS).
        """
        if self.env.supports_time_skipping:
            await self.env.sleep(duration)

    async def received_now(self, queued: timedelta = timedelta(0)) -> str:
        """The server's time now, as the portal stamps a callback it receives (``received_at``); one
        that ``queued`` at the portal was stamped that long before."""
        return (await self.env.get_current_time() - queued).isoformat()

    @asynccontextmanager
    async def time_running(self) -> AsyncIterator[None]:
        """Lets the server skip to its next timer whenever the workflows are idle."""
        if not self.env.supports_time_skipping:
            yield
            return
        await self.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
        try:
            yield
        finally:
            await self.client.test_service.lock_time_skipping(LockTimeSkippingRequest())

    async def finish(self, handle: WorkflowHandle[Any, Any]) -> Any:
        """The run's result once it closes (None if Temporal cancelled it), skipping time to get there."""
        async with self.time_running():
            try:
                return await handle.result()
            except WorkflowFailureError as failure:
                if isinstance(failure.cause, CancelledError):
                    return None
                raise

    # --- the API's start ------------------------------------------------------------------------

    def payment_input(
        self,
        path: RecordedPath,
        channel: Channel,
        invoices: list[LedgerInvoice],
        amanpay: AmanpayPayer | None = None,
        payer: PayerInfo | None = None,
        declaration: dict[str, str] | None = None,
    ) -> PaymentInput:
        """The input web/payments.py builds for this user, channel and invoices."""
        s = self.settings
        deadline = {
            Channel.CMI_FATOURATI: s.fatourati_expiry_seconds,
            Channel.CHEQUE: s.offline_payment_deadline_seconds,
            Channel.BANK_TRANSFER: s.offline_payment_deadline_seconds,
        }.get(channel, s.cmi_payment_deadline_seconds)
        amanpay_settings = (
            AmanpaySettings(
                code_ttl_seconds=s.amanpay_code_ttl_seconds,
                redirect_deadline_seconds=s.amanpay_redirect_deadline_seconds,
                otp_ttl_seconds=s.paydirect_otp_ttl_seconds,
                step_timeout_seconds=s.paydirect_step_timeout_seconds,
            )
            if amanpay is not None
            else None
        )
        company: Company = invoices[0].company
        return PaymentInput(
            payment_id=path.business_id,
            channel=channel.value,
            company_id=company.id,
            user_id=USER_ID,
            user_name=USER_NAME,
            invoice_ids=[inv.id for inv in invoices],
            payer=payer or PayerInfo(name=company.name, email=USER_EMAIL),
            payment_deadline_seconds=deadline,
            emitter_ack_deadline_seconds=s.emitter_ack_deadline_seconds,
            reminder_before_seconds=s.fatourati_reminder_before_seconds,
            declaration=declaration,
            finance_alert_email=s.finance_alert_email,
            amanpay=amanpay,
            amanpay_settings=amanpay_settings,
        )

    async def start_payment(
        self, inp: PaymentInput, invoices: list[LedgerInvoice], plan: Plan | None = None
    ) -> tuple[PaymentHandle, PaymentView]:
        """Update-with-start on ``ready``, as web/payments.start_payment does; the view it answers."""
        self.world.plan(inp.payment_id, plan or Plan([inv.id for inv in invoices]))
        amount = sum((Decimal(inv.amount_ttc) for inv in invoices), Decimal("0"))
        operation = WithStartWorkflowOperation(
            PaymentWorkflow.run,
            inp,
            id=f"payment-{inp.payment_id}",
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=search_attributes(
                inp,
                invoices[0].company.customs_code,
                [inv.emitter[0] for inv in invoices],
                [inv.number for inv in invoices],
                f"{amount:.2f}",
            ),
        )
        view = await self.client.execute_update_with_start_workflow(
            PaymentWorkflow.ready, start_workflow_operation=operation
        )
        return await operation.workflow_handle(), view

    async def apply_unapplied(
        self, path: RecordedPath, invoice: LedgerInvoice
    ) -> tuple[ApplicationHandle, ApplyOutcome]:
        """Update-with-start on ``outcome``, as web/unapplied.apply_unapplied does (finance's user)."""
        operation = WithStartWorkflowOperation(
            ApplyUnappliedWorkflow.run,
            ApplyUnappliedInput(
                unapplied_id=int(path.business_id),
                invoice_number=invoice.number,
                user_id=FINANCE_USER_ID,
                user_name="finance",
                emitter_ack_deadline_seconds=self.settings.emitter_ack_deadline_seconds,
            ),
            id=path.workflow_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        outcome = await self.client.execute_update_with_start_workflow(
            ApplyUnappliedWorkflow.outcome, start_workflow_operation=operation
        )
        return await operation.workflow_handle(), outcome

    # --- the web layer's messages ---------------------------------------------------------------

    def sealed(self, payment_id: str, code: str) -> SealedCode:
        """The SMS code as web/channels/paydirect.submit_sms_code seals it before the Update."""
        return SealedCode(amanpay_protocol.seal_otp(self.settings.secret_key, payment_id, code))
