"""The chaos run's payers (bench/chaos/payers.py) pay what the portal shows with the code, as a person
at a cash counter does: not the amount of a start answered while the attempt was still starting."""

from __future__ import annotations

import json

import httpx
import pytest

from bench.chaos import payers
from bench.chaos.payers import Payer, PaymentRun


async def test_a_cash_code_read_after_a_start_still_starting_is_paid_with_the_amount_shown_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(payers, "RETRY_PAUSE", 0.0)
    counter: list[dict[str, str]] = []

    def portal(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":  # answered before the reservation: no action, no amount yet
            return httpx.Response(201, json={"id": "PN1", "status": "started", "amount": "0.00"})
        action = {"kind": "cash_code", "code": "18 0857 637-947"}
        return httpx.Response(
            200, json={"id": "PN1", "status": "awaiting_payer", "amount": "1920.00", "next_action": action}
        )

    def tashilat(request: httpx.Request) -> httpx.Response:
        counter.append(json.loads(request.content))
        return httpx.Response(200, json={"result": "paid"})

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(portal), base_url="http://portal") as api,
        httpx.AsyncClient(transport=httpx.MockTransport(tashilat), base_url="http://sandbox") as banks,
    ):
        run = await Payer(api, banks).pay(PaymentRun(invoice_id=7, channel="amanpay"))

    assert counter == [{"code": "18 0857 637-947", "amount": "1920.00"}]
    assert run.bank_answer == "paid" and run.payment_id == "PN1"
