"""Finance in a browser: a new client's access request, filed from the login page, in the back-office."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import expect

from tests.support.browser import Scenario, log_in
from tests.support.pages import PASSWORD


async def test_finance_sees_an_access_request(scenario: Scenario) -> None:
    page = scenario.page
    company = f"ATLAS LOGISTIQUE {uuid.uuid4().hex[:6].upper()}"
    await page.goto(scenario.base_url + "/connexion")
    await page.get_by_role("link", name="Nouveau client ?").click()
    await expect(page.get_by_role("heading", name="Demande d'accès au Guichet Unique")).to_be_visible()
    await page.get_by_label("Raison sociale").fill(company)
    await page.get_by_label("Code douanier").fill("7788")
    await page.get_by_label("Nom et prénom du contact").fill("Youssef Alaoui")
    await page.get_by_label("E-mail").fill("y.alaoui@atlas-logistique.ma")
    await page.get_by_label("Téléphone").fill("+212 522 44 55 66")
    await page.get_by_label("Profil de la société").select_option("transitaire")
    await scenario.check("access request form")
    await page.get_by_role("button", name="Envoyer la demande").click()
    await expect(page).to_have_url(re.compile(r"/connexion$"))
    await expect(page.get_by_role("status")).to_contain_text("demande d'accès a été enregistrée")
    await scenario.check("access request sent")

    await log_in(scenario, "finance", PASSWORD)
    await page.goto(scenario.base_url + "/finance/demandes-acces")
    row = page.get_by_role("row").filter(has_text=company)
    await expect(row).to_be_visible()
    await scenario.check("finance access requests")
    await row.get_by_role("button", name="Marquer traitée").click()
    await expect(page.get_by_role("status")).to_contain_text("marquée comme traitée")
    await expect(page.get_by_role("row").filter(has_text=company)).to_have_count(0)
    await scenario.check("access request handled")
