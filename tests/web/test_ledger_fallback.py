"""When no worker answers the workflow query, the page says it shows the ledger's state."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from temporalio.service import RPCError, RPCStatusCode

from portnet.models import Payment
from web.attempts import read_view


class _Handle:
    async def query(self, *_: Any) -> None:
        raise RPCError("no worker", RPCStatusCode.DEADLINE_EXCEEDED, b"")


class _Client:
    def get_workflow_handle(self, _: str) -> _Handle:
        return _Handle()


async def test_read_view_marks_the_ledger_fallback() -> None:
    payment = Payment(
        id="PN0123456789AB",
        workflow_id="payment-PN0123456789AB",
        channel="amanpay_paydirect",
        amount=Decimal("120.00"),
        company_id=1,
        invoice_numbers="A1",
    )
    view = await read_view(_Client(), payment)  # type: ignore[arg-type]
    assert view.from_ledger and view.status == "started"
