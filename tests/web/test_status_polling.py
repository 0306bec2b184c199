"""Pollers of a live attempt share the workflow's last answer for a moment; actions read afresh."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

import pytest

from portnet.models import Payment
from web import attempts
from web.attempts import forget_view, read_view
from workflows.types import PaymentView


class _Counting:
    """A Temporal client whose workflow answers the state query and counts the queries."""

    def __init__(self, status: str = "awaiting_payer") -> None:
        self.queries = 0
        self.status = status

    def get_workflow_handle(self, workflow_id: str) -> Any:
        client = self

        class _Handle:
            async def query(self, *_: Any) -> PaymentView:
                client.queries += 1
                return PaymentView(
                    id=workflow_id.removeprefix("payment-"),
                    workflow_id=workflow_id,
                    status=client.status,
                    channel="cmi_card",
                    amount="120.00",
                    invoice_ids=[1],
                )

        return _Handle()


def _live() -> Payment:
    payment_id = "PN" + secrets.token_hex(6).upper()
    return Payment(
        id=payment_id,
        workflow_id=f"payment-{payment_id}",
        channel="cmi_card",
        amount=Decimal("120.00"),
        company_id=1,
        invoice_numbers="A1",
    )


async def test_pollers_share_one_answer_and_actions_read_afresh() -> None:
    client, payment = _Counting(), _live()

    first = await read_view(client, payment, polling=True)  # type: ignore[arg-type]
    again = await read_view(client, payment, polling=True)  # type: ignore[arg-type]
    assert client.queries == 1 and again == first and again is not first

    client.status = "awaiting_confirmation"
    fresh = await read_view(client, payment)  # type: ignore[arg-type]  # e.g. after an SMS code
    assert client.queries == 2 and fresh.status == "awaiting_confirmation"
    # The fresh answer is what the next poll gets.
    polled = await read_view(client, payment, polling=True)  # type: ignore[arg-type]
    assert client.queries == 2 and polled.status == "awaiting_confirmation"

    client.status = "awaiting_payer"
    forget_view(payment.id)  # this process signalled or updated the workflow
    polled = await read_view(client, payment, polling=True)  # type: ignore[arg-type]
    assert client.queries == 3 and polled.status == "awaiting_payer"


async def test_an_old_answer_is_not_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    client, payment = _Counting(), _live()
    monkeypatch.setattr(attempts, "POLL_SECONDS", 0.0)
    await read_view(client, payment, polling=True)  # type: ignore[arg-type]
    await read_view(client, payment, polling=True)  # type: ignore[arg-type]
    assert client.queries == 2
