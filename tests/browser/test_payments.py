"""Paying in a browser, as the guide shows it: the card on CMI's page (and with 3-D Secure), a Fatourati
reference paid in a bank channel, Amanpay's screen (PayDirect's bank and SMS code, the cash code at a
Tashilat counter), and a cheque confirmed by finance. Each through the real portal, worker and
sandboxes; our pages pass the scenario's checks (phone width, axe), the partners' pages are only
photographed. Each runs at desktop width and at 390 px.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from playwright.async_api import Page, expect

from portnet.models import Invoice
from tests.support.api import CONTRACT, Stack, last_sms_code, sandbox_url
from tests.support.browser import Scenario, card_on_cmi_page, log_in, pay_now_at, until_paid
from tests.support.pages import PASSWORD


async def test_card_payment_on_the_cmi_page(scenario: Scenario, make_invoice: Callable[..., Invoice]) -> None:
    invoice = make_invoice(customs_code="93583", ht="3000.00", tva="600.00", methods="cmi,amanpay,cheque")
    await pay_now_at(scenario, invoice.number, "aska", PASSWORD)
    page = await card_on_cmi_page(scenario, "4000000000000010", readme=True)
    # CMI approves and sends the payer back; the status page follows the workflow until it settled.
    await expect(page).to_have_url(re.compile(r"/paiements/PN[0-9A-F]{12}"), timeout=20_000)
    await until_paid(scenario)
    await expect(page.locator(".status-card__amount")).to_have_text(re.compile(r"3\s600,00\sMAD"))
    await scenario.check("card payment confirmed", readme="paiement-reussi")


async def test_card_with_3d_secure(scenario: Scenario, make_invoice: Callable[..., Invoice]) -> None:
    invoice = make_invoice(ht="500.00", tva="100.00")
    await pay_now_at(scenario, invoice.number, "sataa", PASSWORD)
    page = await card_on_cmi_page(scenario, "5191630100004896")
    # The card's bank asks for its code (the sandbox's is 123) before CMI decides.
    await expect(page.get_by_role("heading", name="Authentification 3-D Secure")).to_be_visible()
    await scenario.screenshot("3-D Secure code", readme="cmi-3d-secure")
    await page.get_by_label("Code de vérification").fill("123")
    await page.get_by_role("button", name="Valider").click()
    await expect(page).to_have_url(re.compile(r"/paiements/PN[0-9A-F]{12}"), timeout=20_000)
    await until_paid(scenario)
    await scenario.check("3-D Secure card payment confirmed")


async def test_fatourati_reference_paid_in_a_bank_channel(
    scenario: Scenario, stack: Stack, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice(ht="250.00", tva="50.00")
    await pay_now_at(scenario, invoice.number, "sataa", PASSWORD)
    page = scenario.page
    await page.get_by_role("radio", name="Fatourati").check()
    await page.get_by_role("button", name="Payer avec CMI Fatourati").click()
    reference = page.get_by_label("Référence Fatourati", exact=True)
    await expect(reference).to_have_text(re.compile(r"^\d{13}$"))
    await expect(page.locator("[data-countdown]").first).to_have_text(re.compile(r"^2 h 5\d min \d\d s$"))
    for section in ("COMMENT PROCÉDER AU PAIEMENT", "DÉTAIL DEMANDE DE PAIEMENT", "INFORMATIONS DU CLIENT"):
        await expect(page.get_by_role("heading", name=section)).to_be_visible()
    await scenario.check("Fatourati reference", readme="fatourati-reference")
    status_url = page.url
    digits = (await reference.text_content() or "").strip()

    # The payer types the 13 digits and the amount in a bank app: the sandbox's AttijariNet.
    await page.goto(sandbox_url("/sandbox/fatourati/canal/attijarinet"))
    await page.get_by_label("Référence Fatourati (13 chiffres)").fill(digits)
    await page.get_by_label("Montant de la facture (MAD)").fill("300.00")
    await page.get_by_role("button", name="Payer").click()
    await expect(page.locator("#result")).to_have_text("Paiement effectué")
    await scenario.screenshot("bank channel paid the reference")

    await page.goto(status_url)
    await until_paid(scenario)
    await scenario.check("Fatourati payment confirmed")


async def amanpay_screen(scenario: Scenario, number: str) -> Page:
    """Régler des factures -> Amanpay (one choice, its logo in the guide) -> Amanpay's own screen."""
    await pay_now_at(scenario, number, "sataa", PASSWORD)
    page = scenario.page
    await page.get_by_role("radio", name="Amanpay").check()
    await expect(page.get_by_role("radio", name="PayDirect")).to_have_count(0)  # chosen on Amanpay's screen
    await page.get_by_role("button", name="Payer avec Amanpay").click()
    await expect(page.get_by_text("Veuillez choisir un moyen de paiement")).to_be_visible()
    return page


async def test_amanpay_paydirect_bank_then_sms_code(
    scenario: Scenario, stack: Stack, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice(ht="400.00", tva="80.00")
    page = await amanpay_screen(scenario, invoice.number)
    await scenario.check("Amanpay screen", readme="amanpay")
    paydirect = page.locator("#amanpay_paydirect")
    await paydirect.get_by_role("radio", name="Banque Populaire").check()
    await paydirect.get_by_role("button", name="Continuer avec ma banque").click()
    paydirect = page.locator("#amanpay_paydirect")
    await expect(paydirect.get_by_text("Banque choisie")).to_be_visible()
    await paydirect.get_by_label("Numéro contrat").fill(CONTRACT["contract_number"])
    await paydirect.get_by_label("CIN").fill(CONTRACT["cin"])
    await paydirect.get_by_label("Nom mandataire").fill(CONTRACT["mandataire"])
    await paydirect.get_by_label("Numéro Tél").fill(CONTRACT["phone"])
    await paydirect.get_by_label("Votre adresse mail").fill(CONTRACT["email"])
    await scenario.check("PayDirect contract", readme="paydirect-contrat")
    await paydirect.get_by_role("button", name="Valider").click()

    await expect(page.get_by_role("heading", name="Code secret reçu par SMS")).to_be_visible()
    payment_id = page.url.rsplit("/", 1)[-1]
    async with httpx.AsyncClient(timeout=10) as sandbox:
        code = await last_sms_code(sandbox, CONTRACT["phone"], payment_id)
    await page.get_by_label("Code secret (6 chiffres)").fill(f"{(int(code) + 1) % 1_000_000:06d}")
    await page.get_by_role("button", name="Valider le code").click()
    await expect(page.get_by_role("alert")).to_contain_text("Il vous reste 2 essais")
    await scenario.check("PayDirect wrong code", readme="paydirect-code-sms")
    await page.get_by_label("Code secret (6 chiffres)").fill(code)
    await page.get_by_role("button", name="Valider le code").click()
    await until_paid(scenario)
    await scenario.check("PayDirect payment confirmed")


async def test_amanpay_cash_code_paid_at_a_tashilat_counter(
    scenario: Scenario, stack: Stack, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice(ht="150.00", tva="30.00")
    page = await amanpay_screen(scenario, invoice.number)
    cash = page.locator("#amanpay_code")
    await cash.get_by_label("Nom", exact=True).fill("Alaoui")
    await cash.get_by_label("Prénom").fill("Yassine")
    await cash.get_by_label("Adresse e-mail").fill("tresorerie@sataa.ma")
    await cash.get_by_role("button", name="Recevoir le code de paiement").click()
    code = page.locator("[data-payment-code]")
    await expect(code).to_have_text(re.compile(r"^18 \d{4} \d{3}-\d{3}$"))
    await scenario.check("cash code", readme="amanpay-code-de-paiement")
    status_url = page.url
    cash_code = (await code.text_content() or "").strip()

    await page.goto(sandbox_url("/sandbox/tashilat"))
    await page.get_by_label("Code de paiement").fill(cash_code)
    await page.get_by_label("Montant encaissé (MAD)").fill("180.00")
    await page.get_by_role("button", name="Encaisser").click()
    await expect(page.get_by_text("Paiement encaissé.")).to_be_visible()
    await scenario.screenshot("Tashilat counter")

    await page.goto(status_url)
    await until_paid(scenario)
    await scenario.check("cash payment confirmed")


async def test_cheque_confirmed_by_finance(scenario: Scenario, make_invoice: Callable[..., Invoice]) -> None:
    invoice = make_invoice(ht="1000.00", tva="200.00", methods="cheque,virement")
    await pay_now_at(scenario, invoice.number, "sataa", PASSWORD)
    page = scenario.page
    await page.get_by_role("radio", name="Chèque").check()
    await page.get_by_label("Numéro du chèque").fill("4471203")
    await page.get_by_label("Banque du chèque").fill("Attijariwafa bank")
    await scenario.check("cheque declaration")
    await page.get_by_role("button", name="Payer avec Chèque").click()
    await expect(page).to_have_url(re.compile(r"/paiements/PN[0-9A-F]{12}$"))
    await expect(page.get_by_text("En attente de confirmation").first).to_be_visible()
    await scenario.check("cheque declared")
    status_url = page.url

    await log_in(scenario, "finance", PASSWORD)
    await page.goto(scenario.base_url + "/finance/confirmations")
    row = page.get_by_role("row").filter(has_text=invoice.number)
    await expect(row).to_contain_text("4471203")
    await scenario.check("finance confirmations", readme="finance-confirmations")
    await row.get_by_role("button", name="Confirmer l'encaissement").click()
    await expect(page.get_by_role("status")).to_contain_text("confirmé")
    await scenario.check("cheque confirmed")

    await log_in(scenario, "sataa", PASSWORD)
    await page.goto(status_url)
    await until_paid(scenario)
    await scenario.check("cheque payment confirmed")
