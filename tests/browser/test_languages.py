"""Languages in a browser: the header's switch turns the portal into Arabic (right to left) and
English, and the choice follows the user from page to page."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from playwright.async_api import expect
from sqlmodel import Session, select

from portnet.models import Company, Invoice, User
from portnet.security import hash_password
from tests.support.api import VISA, Stack
from tests.support.browser import Scenario, last_mail_to, log_in
from tests.support.pages import PASSWORD


def new_user(db: Session, language: str | None = None) -> User:
    """A user of their own: the switch writes the profile, which other scenarios must not inherit."""
    company = db.exec(select(Company).where(Company.customs_code == "290240")).one()
    user = User(
        username=f"lang{uuid.uuid4().hex[:8]}",
        password_hash=hash_password(PASSWORD),
        role="client",
        company_id=company.id,
        full_name="Agent de test",
        email=f"agent.{uuid.uuid4().hex[:8]}@sataa.ma",
        language=language,
    )
    db.add(user)
    db.commit()
    return user


async def test_switch_to_arabic_and_english(scenario: Scenario, db: Session) -> None:
    page = scenario.page
    html = page.locator("html")
    await log_in(scenario, new_user(db).username, PASSWORD)
    await expect(page).to_have_url(re.compile(r"/accueil$"))
    await expect(html).to_have_attribute("lang", "fr")

    await page.get_by_role("button", name="العربية").click()
    await expect(html).to_have_attribute("dir", "rtl")
    await expect(html).to_have_attribute("lang", "ar")
    await expect(
        page.get_by_role("heading", name="مرحبًا بكم في المنصة المجتمعية للأداء متعدد القنوات")
    ).to_be_visible()
    # Right to left for real: the brand sits on the right of the header, the session on the left.
    brand = await page.locator(".brand").bounding_box()
    tools = await page.locator(".header-tools").bounding_box()
    assert brand is not None and tools is not None
    if not scenario.viewport.is_phone:
        assert brand["x"] > tools["x"]
    await scenario.check("home in arabic")

    await page.locator(".home-menus").get_by_role("link", name="تدبير الفواتير").click()
    await page.get_by_label("رقم الفاتورة").fill("00069321")
    await page.get_by_role("button", name="بحث").click()
    await expect(page.get_by_text("النتائج ( 1 )")).to_be_visible()
    await scenario.check("search in arabic")

    await page.get_by_role("link", name="00069321").first.click()
    await expect(page.get_by_role("heading", name=re.compile("تتبع الفاتورة"))).to_be_visible()
    await expect(page.get_by_text("3.600,00").first).to_be_visible()  # ar_MA amounts
    await scenario.check("invoice in arabic")

    await page.get_by_role("button", name="English").click()
    await expect(html).to_have_attribute("dir", "ltr")
    await expect(html).to_have_attribute("lang", "en")
    await expect(page.get_by_role("heading", name=re.compile("Invoice follow-up"))).to_be_visible()
    await expect(page.get_by_text("3,600.00").first).to_be_visible()
    await scenario.check("invoice in english")

    await page.get_by_role("button", name="Français").click()
    await expect(html).to_have_attribute("lang", "fr")
    await expect(page.get_by_role("heading", name=re.compile("Suivi du Facture"))).to_be_visible()
    await expect(page.get_by_text("3\u202f600,00").first).to_be_visible()
    await scenario.check("invoice in french")


CARD_PAYMENT = {
    # language: (the status "succeeded" as the page reads it, the confirmation e-mail's subject, the
    # receipt's link: issued a moment after the settlement, the page reloads itself to offer it)
    "fr": ("Réussi", "Paiement confirmé", "Télécharger le reçu"),
    "ar": ("ناجح", "تم تأكيد الأداء", "تنزيل الوصل"),
    "en": ("Succeeded", "Payment confirmed", "Download the receipt"),
}


# One width is enough for the language: test_switch_to_arabic_and_english covers the phone.
@pytest.mark.parametrize("viewport", ["desktop"], indirect=True)
@pytest.mark.parametrize("language", sorted(CARD_PAYMENT))
async def test_card_payment_in_each_language(
    scenario: Scenario, db: Session, stack: Stack, make_invoice: Callable[..., Invoice], language: str
) -> None:
    """The whole card payment in the user's language: the search, the confirmation, CMI's page (which
    receives ``lang``), the status page and the confirmation e-mail."""
    succeeded, subject, receipt = CARD_PAYMENT[language]
    user = new_user(db, language)
    invoice = make_invoice(ht="4404.00", tva="880.80", methods="cmi")
    page = scenario.page
    html = page.locator("html")
    await log_in(scenario, user.username, PASSWORD)
    await expect(html).to_have_attribute("lang", language)

    await page.goto(scenario.base_url + f"/factures?number={invoice.number}")
    await page.locator(f'input[name="invoice_ids"][value="{invoice.id}"]').check()
    await page.locator("#pay-form button[type=submit]").click()
    await expect(html).to_have_attribute("dir", "rtl" if language == "ar" else "ltr")
    await page.locator('input[name="channel"][value="cmi_card"]').check()
    await page.locator("#payer_email").fill(user.email or "agent@sataa.ma")
    await scenario.check(f"confirmation in {language}")
    await page.locator("form[data-pay-form] button[type=submit]").click()

    await expect(html).to_have_attribute("lang", language)  # CMI's hosted page took our `lang`
    await page.locator("#pan").fill(VISA["pan"])
    await page.locator("#expiry").fill(VISA["expiry"])
    await page.locator("#cvv").fill(VISA["cvv"])
    await page.locator("button[type=submit]").click()

    await expect(page).to_have_url(re.compile(r"/paiements/PN[0-9A-F]{12}"), timeout=30_000)
    await expect(html).to_have_attribute("lang", language)
    await expect(page.locator(".status-card__status")).to_contain_text(succeeded, timeout=30_000)
    await expect(page.get_by_role("link", name=receipt)).to_be_visible(timeout=30_000)
    await scenario.check(f"payment succeeded in {language}")
    mail = await last_mail_to(stack.sandbox_url, user.email or "", subject)
    assert subject in mail["subject"]
