"""The Amanpay pages as a payer uses them (server-rendered forms over real HTTP)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import httpx
import pytest_asyncio

from portnet.models import Invoice
from tests.support.api import CONTRACT, Stack, last_sms_code
from tests.support.pages import logged_in, token_of
from tests.support.workers import eventually


@pytest_asyncio.fixture
async def browser(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
        yield client


async def choice_screen(browser: httpx.AsyncClient, invoice: Invoice, channel: str) -> tuple[str, str]:
    token = await logged_in(browser, "sataa")
    page = await browser.post(
        "/paiements",
        data={
            "csrf_token": token,
            "invoice_ids": str(invoice.id),
            "channel": channel,
            "payer_email": "t@sataa.ma",
        },
    )
    assert page.status_code == 200, page.text[:500]
    assert "Veuillez choisir un moyen de paiement" in page.text
    for label in ("Carte Amanty", "PayDirect", "Code de paiement"):
        assert label in page.text
    # PayDirect starts with the payer's bank: its contract fields come once the bank is chosen.
    assert "Choisissez votre banque" in page.text and 'name="ap_contract_number"' not in page.text
    order = re.search(r"name=\"order_id\" value=\"(PN[0-9A-F]{12})\"", page.text)
    assert order and order.group(1) in page.text and "120,00" in page.text
    return order.group(1), token_of(page.text)


async def test_paydirect_in_the_portal_with_a_wrong_first_code(
    stack: Stack,
    browser: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    make_invoice: Callable[..., Invoice],
) -> None:
    invoice = make_invoice()
    # The confirmation screen offers Amanpay once; PayDirect is chosen on Amanpay's screen, bank first.
    order_id, token = await choice_screen(browser, invoice, "amanpay")
    bank_step = await browser.post(
        "/paiements",
        data={
            "csrf_token": token,
            "invoice_ids": str(invoice.id),
            "channel": "amanpay_paydirect",
            "order_id": order_id,
            "ap_bank": "BCP",
        },
    )
    assert bank_step.status_code == 200 and f'value="{order_id}"' in bank_step.text
    assert "Banque Populaire" in bank_step.text and 'name="ap_contract_number"' in bank_step.text
    form = {f"ap_{k}": v for k, v in CONTRACT.items()} | {"ap_bank": "BCP"}
    started = await browser.post(
        "/paiements",
        data={
            "csrf_token": token,
            "invoice_ids": str(invoice.id),
            "channel": "amanpay_paydirect",
            "amanpay_step": "1",
            "order_id": order_id,
            **form,
        },
    )
    assert started.status_code == 303 and started.headers["location"] == f"/paiements/{order_id}"
    page = await browser.get(f"/paiements/{order_id}")
    assert "Code secret reçu par SMS" in page.text and "Essais restants" in page.text
    code = await last_sms_code(anonymous, CONTRACT["phone"], order_id)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    token = token_of(page.text)
    reply = await browser.post(f"/paiements/{order_id}/code-sms", data={"csrf_token": token, "code": wrong})
    assert reply.status_code == 303
    page = await browser.get(f"/paiements/{order_id}")
    assert "Il vous reste 2 essais" in page.text
    reply = await browser.post(f"/paiements/{order_id}/code-sms", data={"csrf_token": token, "code": code})
    assert reply.status_code == 303

    async def paid() -> str | None:
        text = (await browser.get(f"/paiements/{order_id}")).text
        return text if "Télécharger le reçu" in text else None

    await eventually(paid, timeout=30)


async def test_cash_code_page_shows_code_and_countdown(
    stack: Stack, browser: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    order_id, token = await choice_screen(browser, invoice, "amanpay")
    started = await browser.post(
        "/paiements",
        data={
            "csrf_token": token,
            "invoice_ids": str(invoice.id),
            "channel": "amanpay_code",
            "amanpay_step": "1",
            "order_id": order_id,
            "ap_last_name": "Alaoui",
            "ap_first_name": "Yassine",
            "ap_email": "t@sataa.ma",
        },
    )
    assert started.status_code == 303
    page = await browser.get(started.headers["location"])
    assert (
        re.search(r"18 \d{4} \d{3}-\d{3}", page.text)
        and "data-countdown" in page.text
        and "Tashilat" in page.text
    )
    # A second submit of the same screen does not start a second attempt.
    again = await browser.post(
        "/paiements",
        data={
            "csrf_token": token,
            "invoice_ids": str(invoice.id),
            "channel": "amanpay_code",
            "amanpay_step": "1",
            "order_id": order_id,
            "ap_last_name": "Alaoui",
            "ap_first_name": "Yassine",
            "ap_email": "t@sataa.ma",
        },
    )
    assert again.status_code == 409
    token = token_of(page.text)
    await browser.post(f"/paiements/{order_id}/annuler", data={"csrf_token": token})


async def test_paydirect_refusal_stays_on_the_amanpay_screen(
    stack: Stack, browser: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    order_id, token = await choice_screen(browser, invoice, "amanpay")
    form = {f"ap_{k}": v for k, v in {**CONTRACT, "cin": "ZZ999999", "bank": "BCP"}.items()}
    page = await browser.post(
        "/paiements",
        data={
            "csrf_token": token,
            "invoice_ids": str(invoice.id),
            "channel": "amanpay_paydirect",
            "amanpay_step": "1",
            "order_id": order_id,
            **form,
        },
    )
    assert (
        page.status_code == 422 and "CIN ne correspond pas" in page.text and "Veuillez choisir" in page.text
    )
    assert "Banque choisie" in page.text and 'name="ap_contract_number"' in page.text


async def test_finance_sees_the_unapplied_list(stack: Stack, browser: httpx.AsyncClient) -> None:
    await logged_in(browser, "finance")
    old = await browser.get("/finance/encaissements-non-affectes")
    assert old.status_code == 301 and old.headers["location"] == "/finance/encaissements"
    page = await browser.get("/finance/encaissements")
    assert page.status_code == 200 and "non affectés" in page.text
