"""What the ledger adds to the workflow's answer: the whole state when no worker answers (and the page
says so), the amount while the attempt is still starting."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from temporalio.service import RPCError, RPCStatusCode

from portnet.models import Payment
from web.attempts import read_view
from workflows.types import PaymentView


class _Handle:
    async def query(self, *_: Any) -> None:
        raise RPCError("no worker", RPCStatusCode.DEADLINE_EXCEEDED, b"")


class _Client:
    def get_workflow_handle(self, _: str) -> _Handle:
        return _Handle()


def _ledger_row(payment_id: str, channel: str, amount: str) -> Payment:
    """The attempt's ledger row, as its reservation wrote it."""
    return Payment(
        id=payment_id,
        workflow_id=f"payment-{payment_id}",
        channel=channel,
        amount=Decimal(amount),
        company_id=1,
        invoice_numbers="A1",
    )


async def test_read_view_marks_the_ledger_fallback() -> None:
    payment = _ledger_row("PN0123456789AB", "amanpay_paydirect", "120.00")
    view = await read_view(_Client(), payment)  # type: ignore[arg-type]
    assert view.from_ledger and view.status == "started"


class _Starting:
    """A workflow that has not read its reservation back yet: its view shows no amount."""

    def get_workflow_handle(self, workflow_id: str) -> Any:
        class _Handle:
            async def query(self, *_: Any) -> PaymentView:
                return PaymentView(
                    id=workflow_id.removeprefix("payment-"),
                    workflow_id=workflow_id,
                    status="started",
                    channel="amanpay_code",
                    amount="0.00",
                    invoice_ids=[1],
                )

        return _Handle()


async def test_an_attempt_still_starting_shows_the_amount_its_reservation_wrote() -> None:
    """An idempotent retry of a start, or a poll, may find the attempt before its workflow has read
    the reservation back: the payer is shown the ledger's amount, never 0.00 (which they would pay)."""
    payment = _ledger_row("PN0123456789AC", "amanpay_code", "1920.00")
    view = await read_view(_Starting(), payment)  # type: ignore[arg-type]
    assert (view.status, view.amount, view.from_ledger) == ("started", "1920.00", False)
