"""The channel pages as a person sees them: the Fatourati reference page, the finance back-office
confirming a declared transfer."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

import httpx
from sqlmodel import Session

from portnet.models import Invoice
from tests.support.api import Stack, login, start_fatourati, until_status
from tests.support.pages import token_of
from web.channels.fatourati import CHANNELS


async def test_reference_page_shows_reference_amount_countdown_and_every_channel(
    stack: Stack, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    a, b = make_invoice(), make_invoice()
    payment = await start_fatourati(sataa, [a.id or 0, b.id or 0])
    ref = payment["next_action"]["fields"]["reference"]
    page = await sataa.get(f"/paiements/{payment['id']}")
    assert page.status_code == 200
    text = page.text
    # The 13 digits as the payer types them, in one piece.
    assert re.fullmatch(r"\d{13}", ref) and f'aria-label="Référence Fatourati">{ref}</p>' in text
    assert "240,00" in text
    assert "data-countdown=" in text and re.search(r"\d h \d\d min \d\d s", text)
    assert "COMMENT PROCÉDER AU PAIEMENT" in text
    assert "expire après un délai de <strong>3 heures</strong>, passé" in text
    # The guide's "24 heures" [380] gives way to the deadline the token has, and the page says so.
    assert f"référence Fatourati {ref} dans un délai de 3 heures." in text
    assert "C'est ce délai de 3 heures qui s'applique" in text
    assert "DÉTAIL DEMANDE DE PAIEMENT" in text and "INFORMATIONS DU CLIENT" in text
    assert "SATAA IMPORT EXPORT SARL AU" in text and "290240" in text and a.number in text
    for channel in CHANNELS:
        assert channel.name in text, channel.name
    assert "Saisir la référence Fatourati (13 chiffres)" in text  # CIH's steps, as the guide words them
    assert "/static/fatourati.js" in text
    await sataa.post(f"/api/v1/payments/{payment['id']}/cancel")
    await until_status(sataa, payment["id"], "cancelled")


async def test_back_office_is_for_finance_only(stack: Stack, sataa: httpx.AsyncClient) -> None:
    for path in (
        "/finance/paiements",
        "/finance/confirmations",
        "/finance/encaissements",
        "/finance/factures",
    ):
        assert (await sataa.get(path)).status_code == 403, path
    assert "/finance/paiements" not in (await sataa.get("/factures")).text
    finance = await login(stack.base_url, "finance")
    try:
        menu = (await finance.get("/factures")).text
        assert 'href="/finance/paiements"' in menu and 'href="/finance/confirmations"' in menu
        for path in (
            "/finance/paiements",
            "/finance/confirmations",
            "/finance/encaissements",
            "/finance/factures",
        ):
            assert (await finance.get(path)).status_code == 200, path
    finally:
        await finance.aclose()


async def test_transfer_declared_in_the_portal_confirmed_in_the_back_office(
    stack: Stack, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    confirmation = await sataa.post(
        "/paiements/confirmation",
        data={"csrf_token": token_of((await sataa.get("/factures")).text), "invoice_ids": str(invoice.id)},
    )
    token = token_of(confirmation.text)
    started = await sataa.post(
        "/paiements",
        data={
            "csrf_token": token,
            "invoice_ids": str(invoice.id),
            "channel": "bank_transfer",
            "payer_name": "Comptabilité SATAA",
            "payer_email": "sataa@demo.portnet.ma",
            "transfer_reference": "VIR-PORTAIL-42",
            "transfer_date": date.today().isoformat(),
        },
    )
    assert started.status_code == 303, started.text
    status_url = started.headers["location"]
    payment_id = status_url.rsplit("/", 1)[-1]
    waiting = (await sataa.get(status_url)).text
    assert "Virement déclaré" in waiting and "VIR-PORTAIL-42" in waiting

    finance = await login(stack.base_url, "finance")
    try:
        page = (await finance.get("/finance/confirmations")).text
        assert payment_id in page and "VIR-PORTAIL-42" in page
        listing = (await finance.get("/finance/paiements", params={"invoice": invoice.number})).text
        assert f"/workflows/payment-{payment_id}" in listing
        decided = await finance.post(
            f"/finance/paiements/{payment_id}/decision",
            data={"csrf_token": token_of(page), "decision": "confirm", "reason": "relevé du jour"},
        )
        assert decided.status_code == 303
    finally:
        await finance.aclose()
    await until_status(sataa, payment_id, "succeeded")
    detail = (await sataa.get(f"/api/v1/invoices/{invoice.id}")).json()
    assert detail["status"] == "paid"
    assert any(m["user_name"] == "finance" and m["name"] == "FIN_CONFIRMED" for m in detail["messages"])
