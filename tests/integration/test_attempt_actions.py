"""Acting on an attempt: 409 once it has ended, the payer's actions for the payer only, finance's cancel.

On the real stack (dev server, worker, sandboxes over HTTP): a signal to a closed workflow is the
RPCError NOT_FOUND that used to surface as a 500.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest_asyncio

from portnet.models import Invoice
from tests.support.api import (
    CONTRACT,
    VISA,
    Stack,
    declare_transfer,
    login,
    open_cmi_page,
    pay,
    start_amanpay,
    start_card_payment,
    until_status,
)

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest_asyncio.fixture
async def finance(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    client = await login(stack.base_url, "finance")
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def admin(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    client = await login(stack.base_url, "admin")
    yield client
    await client.aclose()


async def invoice_status(client: httpx.AsyncClient, invoice_id: int) -> str:
    status: str = (await client.get(f"/api/v1/invoices/{invoice_id}")).json()["status"]
    return status


async def test_cancelling_an_attempt_that_has_ended_is_a_409(
    stack: Stack, sataa: httpx.AsyncClient, anonymous: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    cancelled = await start_card_payment(sataa, [make_invoice().id or 0])
    first = await sataa.post(f"/api/v1/payments/{cancelled['id']}/cancel")
    assert first.status_code == 202 and first.json() == {"status": "cancel_requested"}
    await until_status(sataa, cancelled["id"], "cancelled")
    again = await sataa.post(f"/api/v1/payments/{cancelled['id']}/cancel")
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "attempt_over" and "terminée (Annulé)" in again.json()["detail"]

    paid = await start_card_payment(sataa, [make_invoice().id or 0])
    await open_cmi_page(anonymous, paid)
    assert (await pay(anonymous, paid["id"], VISA))["result"] == "approved"
    await until_status(sataa, paid["id"], "succeeded")
    late = await sataa.post(f"/api/v1/payments/{paid['id']}/cancel")
    assert late.status_code == 409 and "accepté" in late.json()["detail"]
    assert (await sataa.get(f"/api/v1/payments/{paid['id']}")).json()["status"] == "succeeded"


async def test_sms_code_and_resend_on_an_ended_paydirect_attempt_are_409(
    stack: Stack, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    reply = await start_amanpay(sataa, [make_invoice().id or 0], "amanpay_paydirect", CONTRACT)
    assert reply.status_code == 201, reply.text
    payment = reply.json()
    assert (await sataa.post(f"/api/v1/payments/{payment['id']}/cancel")).status_code == 202
    await until_status(sataa, payment["id"], "cancelled")
    code = await sataa.post(f"/api/v1/payments/{payment['id']}/sms-code", json={"code": "123456"})
    resend = await sataa.post(f"/api/v1/payments/{payment['id']}/sms-code/resend")
    assert (code.status_code, resend.status_code) == (409, 409), (code.text, resend.text)


async def test_the_payers_actions_refuse_finance_and_admin(
    stack: Stack,
    sataa: httpx.AsyncClient,
    finance: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    make_invoice: Callable[..., Invoice],
) -> None:
    payment = await start_card_payment(sataa, [make_invoice().id or 0])
    base = f"/api/v1/payments/{payment['id']}"
    for staff in (finance, admin):
        assert (await staff.get(base)).status_code == 200  # they see it
        for path, body in ((f"{base}/cancel", None), (f"{base}/sms-code", {"code": "123456"})):
            answer = await staff.post(path, json=body)
            assert answer.status_code == 403, answer.text
            assert "finance annule" in answer.json()["detail"]
        assert (await staff.post(f"{base}/sms-code/resend")).status_code == 403
    assert (await sataa.get(base)).json()["status"] == "awaiting_payer"
    await sataa.post(f"{base}/cancel")


async def test_finance_cancels_a_live_attempt_with_a_reason(
    stack: Stack,
    sataa: httpx.AsyncClient,
    finance: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    make_invoice: Callable[..., Invoice],
) -> None:
    invoice = make_invoice()
    payment = await start_card_payment(sataa, [invoice.id or 0])
    url = f"/api/v1/finance/payments/{payment['id']}/cancel"
    assert (await finance.post(url)).status_code == 422  # the reason is required
    assert (await finance.post(url, json={"reason": "ok"})).status_code == 422
    blank = await finance.post(url, json={"reason": "     "})
    assert blank.status_code == 422 and blank.json()["detail"] == "Indiquez le motif de l'annulation."
    assert (await sataa.post(url, json={"reason": "je veux annuler"})).status_code == 403
    assert (await anonymous.post(url, json={"reason": "je veux annuler"})).status_code == 401
    unknown = await finance.post("/api/v1/finance/payments/PN000000000000/cancel", json={"reason": "xyz"})
    assert unknown.status_code == 404
    assert (await sataa.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "awaiting_payer"

    done = await finance.post(url, json={"reason": "doublon signalé par le client"})
    assert done.status_code == 200, done.text
    assert done.json() == {"status": "cancelled", "payment_id": payment["id"]}
    view = (await sataa.get(f"/api/v1/payments/{payment['id']}")).json()
    assert view["status"] == "cancelled"
    assert view["error"] == "Annulé par la finance (finance) : doublon signalé par le client"
    assert await invoice_status(sataa, invoice.id or 0) == "unpaid"
    detail = (await sataa.get(f"/api/v1/invoices/{invoice.id}")).json()
    assert any("doublon signalé par le client" in (m["observations"] or "") for m in detail["messages"])
    again = await finance.post(url, json={"reason": "doublon signalé par le client"})
    assert again.status_code == 409 and "terminée" in again.json()["detail"]


async def test_finance_withdraws_a_declared_transfer_but_not_an_accepted_one(
    stack: Stack, sataa: httpx.AsyncClient, finance: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    waiting = await declare_transfer(sataa, [make_invoice().id or 0])
    withdrawn = await finance.post(
        f"/api/v1/finance/payments/{waiting['id']}/cancel", json={"reason": "déclaré par erreur"}
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "cancelled"

    accepted = await declare_transfer(sataa, [make_invoice().id or 0])
    base = f"/api/v1/finance/payments/{accepted['id']}"
    assert (await finance.post(f"{base}/confirm", json={"reason": "relevé"})).status_code == 202
    await until_status(sataa, accepted["id"], "succeeded")
    late = await finance.post(f"{base}/cancel", json={"reason": "trop tard"})
    assert late.status_code == 409 and "accepté" in late.json()["detail"]
    assert (await finance.post(f"{base}/confirm", json={"reason": "relevé"})).status_code == 409


async def portal_session(stack: Stack, username: str) -> tuple[httpx.AsyncClient, str]:
    client = httpx.AsyncClient(base_url=stack.base_url, timeout=30)
    page = await client.get("/connexion")
    token = TOKEN.search(page.text)
    assert token
    form = {"username": username, "password": "Portnet2026!", "csrf_token": token.group(1)}
    assert (await client.post("/connexion", data=form)).status_code == 303
    return client, token.group(1)


async def test_the_finance_page_cancels_through_the_same_operation(
    stack: Stack, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    payment = await start_card_payment(sataa, [invoice.id or 0])
    portal, _ = await portal_session(stack, "finance")
    try:
        page = await portal.get("/finance/paiements", params={"invoice": invoice.number})
        assert page.status_code == 200
        action = f'action="/finance/paiements/{payment["id"]}/annuler"'
        assert action in page.text and "Annuler la tentative" in page.text
        token = TOKEN.search(page.text)
        assert token
        url = f"/finance/paiements/{payment['id']}/annuler"
        no_reason = await portal.post(url, data={"csrf_token": token.group(1), "reason": ""})
        assert no_reason.status_code == 303
        assert (await sataa.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "awaiting_payer"
        done = await portal.post(url, data={"csrf_token": token.group(1), "reason": "demande du client"})
        assert done.status_code == 303 and done.headers["location"] == "/finance/paiements"
        listing = await portal.get("/finance/paiements", params={"invoice": invoice.number})
        assert f"Tentative {payment['id']} annulée" in listing.text
        assert action not in listing.text  # over: no cancel form any more
    finally:
        await portal.aclose()
    view: dict[str, Any] = (await sataa.get(f"/api/v1/payments/{payment['id']}")).json()
    assert view["status"] == "cancelled" and "demande du client" in view["error"]
