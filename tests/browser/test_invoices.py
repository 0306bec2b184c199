"""Invoices in a browser: the home screen's menus, a search and an invoice opened; a MARSA MAROC
request followed until its invoices are listed, then one of them paid by card on CMI's page."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Locator, Page, expect

from sandbox.marsa_maroc import GUIDE_TMTA
from tests.support.api import Stack
from tests.support.browser import Scenario, card_on_cmi_page, log_in, until_paid
from tests.support.pages import PASSWORD
from tests.support.workers import eventually


async def test_search_and_open_an_invoice(scenario: Scenario) -> None:
    page = scenario.page
    await log_in(scenario, "sataa", PASSWORD)
    await expect(page).to_have_url(re.compile(r"/accueil$"))
    await expect(page.get_by_role("heading", name="Factures", exact=True)).to_be_visible()
    await scenario.check("home screen", readme="accueil")

    await page.locator(".home-menus").get_by_role("link", name="Gestion des factures").click()
    await page.get_by_label("Numéro de la facture").fill("00069321")
    await page.get_by_role("button", name="Rechercher").click()
    await expect(page.get_by_text("Résultats ( 1 )")).to_be_visible()
    await scenario.check("search result", readme="gestion-des-factures")

    await page.get_by_role("link", name="00069321").first.click()
    await expect(page.get_by_role("heading", name=re.compile("Suivi du Facture"))).to_be_visible()
    await expect(page.get_by_role("heading", name="Liste des messages")).to_be_visible()
    await expect(page.get_by_text("Création de la Facture").first).to_be_visible()
    await scenario.check("invoice detail", readme="suivi-facture")


async def first_payable_outside(page: Page, taken: set[str]) -> tuple[Locator, str]:
    choices = page.locator("input[name=invoice_ids]:not([disabled])")
    for index in range(await choices.count()):
        choice = choices.nth(index)
        number = (await choice.get_attribute("aria-label") or "").rsplit(" ", 1)[-1]
        if number not in taken:
            return choice, number
    raise AssertionError("no payable MARSA MAROC invoice left outside the guide's")


async def test_marsa_maroc_request_progress_and_payment(scenario: Scenario, stack: Stack) -> None:
    page = scenario.page
    await log_in(scenario, "tmta", PASSWORD)
    await page.goto(scenario.base_url + "/factures/demande")
    fields = page.locator("[data-terminal-fields]")
    await expect(fields).to_be_hidden()  # the id fields appear once a terminal is chosen
    await scenario.check("request form")

    await page.get_by_label("Terminal MARSA MAROC").select_option("CASA")
    await expect(fields).to_be_visible()
    await expect(
        page.get_by_role("heading", name=re.compile("MARSAMAROC CASA Port: Casablanca"))
    ).to_be_visible()
    await expect(page.get_by_label("Identifiant MARSAMAROC")).to_have_value("000236")
    await scenario.check("terminal chosen")

    # MARSA MAROC answers its first page slowly: long enough to see the progress.
    async with httpx.AsyncClient(base_url=stack.sandbox_url) as sandbox:
        slow = {"kind": "slow", "times": 1, "delay_seconds": 1.5}
        assert (await sandbox.post("/sandbox/marsa-maroc/admin/faults", json=slow)).status_code == 200
    await page.get_by_role("button", name="Envoyer").click()
    await expect(page).to_have_url(re.compile(r"/factures/demande/MR[0-9A-F]{12}$"))
    await expect(page.get_by_text("Traitement en cours")).to_be_visible()
    await scenario.screenshot("request in progress")  # portal.js reloads it once pages come in
    await expect(page.get_by_text(re.compile(r"Résultats \( 2[34] \)"))).to_be_visible(timeout=60_000)
    await expect(page.get_by_role("cell", name="02296945", exact=True)).to_be_visible()
    await expect(page.get_by_role("cell", name=re.compile("TMTA"))).to_have_count(20)
    await scenario.check("request results", readme="marsa-maroc")

    # The first invoice still payable (the session may have paid others) among those no other test
    # names (the guide's eight are the integration tests'), by card on CMI's page.
    choice, number = await first_payable_outside(page, {row[0] for row in GUIDE_TMTA})
    await choice.check()
    await page.get_by_role("button", name="Régler Factures").click()
    await expect(page.get_by_role("heading", name="Régler des factures")).to_be_visible()
    await expect(page.get_by_text(number).first).to_be_visible()
    await card_on_cmi_page(scenario, "4000000000000010")
    await expect(page).to_have_url(re.compile(r"/paiements/PN[0-9A-F]{12}"), timeout=20_000)
    await until_paid(scenario)

    # MARSA MAROC acknowledges the settlement notice: the invoice reads "Facture payée".
    row = page.get_by_role("row").filter(has_text=number)

    async def paid() -> bool:
        await page.reload()
        return await row.get_by_text("Facture payée").count() == 1

    await eventually(paid, timeout=30, every=0.5)
    await scenario.check("MARSA MAROC invoice paid")
