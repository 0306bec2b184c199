"""The status page of a moving attempt follows it: with JavaScript by the API's long-poll (one reload, once
the status changed), without by its 3-second refresh. The change is the ledger's final status, written
by the test once the page waits, as the workflow's release would write it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from playwright.async_api import expect
from sqlmodel import Session

from activities.ledger import settle_payment
from activities.receipts import issue_receipt
from portnet.models import Invoice, Payment
from tests.support.api import Stack
from tests.support.browser import VIEWPORTS, Scenario, assert_accessible, log_in
from tests.support.pages import PASSWORD
from tests.support.partners import new_attempt
from tests.support.settlements import reserved, settled_input

LIVE = "Cette page se met à jour dès que l'état du paiement change."


def awaiting_confirmation(db: Session, invoice: Invoice) -> Payment:
    """An attempt the ledger shows approved and unconfirmed (no workflow answers for it)."""
    payment = db.get(Payment, new_attempt(db, invoice).payment_id)
    assert payment is not None
    payment.status = "awaiting_confirmation"
    db.add(payment)
    db.commit()
    return payment


def cancel(db: Session, payment: Payment) -> None:
    payment.status, payment.failure_reason = "cancelled", "Tentative annulée par l'opérateur"
    db.add(payment)
    db.commit()


async def test_the_page_waits_on_the_long_poll_and_reloads_once(
    chromium: object, stack: Stack, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    payment = awaiting_confirmation(db, make_invoice())
    context = await chromium.new_context(locale="fr-MA", timezone_id="Africa/Casablanca")  # type: ignore[attr-defined]
    try:
        page = await context.new_page()
        scenario = Scenario(
            page=page, viewport=VIEWPORTS["desktop"], name="status_watch", base_url=stack.base_url
        )
        await log_in(scenario, "sataa", PASSWORD)
        loads: list[str] = []
        page.on("load", lambda _: loads.append(page.url))
        async with page.expect_request(
            lambda r: "/api/v1/payments/" in r.url and "wait=25" in r.url
        ) as polled:
            await page.goto(f"{stack.base_url}/paiements/{payment.id}")
        assert "since=awaiting_confirmation" in (await polled.value).url
        await expect(page.locator(".status-card__status")).to_contain_text("En attente de confirmation")
        await expect(page.get_by_text(LIVE)).to_be_visible()
        await expect(page.get_by_role("link", name="Actualiser")).to_be_visible()
        await assert_accessible(page, "status page waiting on the long-poll")
        await scenario.screenshot("waiting on the long-poll")
        cancel(db, payment)
        await expect(page.locator(".status-card__status")).to_contain_text("Annulé", timeout=20_000)
        assert len(loads) == 2  # the page as opened, then one reload on the change: no reload meanwhile
        await expect(page.get_by_text(LIVE)).to_have_count(0)  # a finished attempt is not watched
    finally:
        await context.close()


async def test_without_javascript_the_refresh_link_shows_the_change(
    chromium: object, stack: Stack, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    """Chromium's "JavaScript off" (Playwright's emulation) still parses ``<noscript>`` as if scripts
    ran, so its 3-second refresh is checked in the page's HTML (tests/web); here, the link."""
    payment = awaiting_confirmation(db, make_invoice())
    context = await chromium.new_context(java_script_enabled=False, locale="fr-MA")  # type: ignore[attr-defined]
    try:
        page = await context.new_page()
        scenario = Scenario(
            page=page, viewport=VIEWPORTS["desktop"], name="status_refresh", base_url=stack.base_url
        )
        await log_in(scenario, "sataa", PASSWORD)
        await page.goto(f"{stack.base_url}/paiements/{payment.id}")
        await expect(page.locator(".status-card__status")).to_contain_text("En attente de confirmation")
        await expect(page.get_by_text(LIVE)).to_be_hidden()  # what the script would show
        cancel(db, payment)
        await page.get_by_role("link", name="Actualiser").click()
        await expect(page.locator(".status-card__status")).to_contain_text("Annulé")
        await expect(page.get_by_role("link", name="Actualiser")).to_have_count(0)
    finally:
        await context.close()


async def test_a_receipt_issued_after_the_page_opened_is_offered_without_a_click(
    chromium: object, stack: Stack, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    """The ledger says "succeeded" a moment before the receipt is stored: a page opened in between
    says the receipt is coming, asks the API, and reloads once, when the receipt is there."""
    payment_id = reserved(make_invoice())
    settled = settled_input(payment_id)
    settle_payment(settled)
    context = await chromium.new_context(locale="fr-MA", timezone_id="Africa/Casablanca")  # type: ignore[attr-defined]
    try:
        page = await context.new_page()
        scenario = Scenario(
            page=page, viewport=VIEWPORTS["desktop"], name="receipt_watch", base_url=stack.base_url
        )
        await log_in(scenario, "sataa", PASSWORD)
        loads: list[str] = []
        page.on("load", lambda _: loads.append(page.url))
        await page.goto(f"{stack.base_url}/paiements/{payment_id}")
        await expect(page.locator(".status-card__status")).to_contain_text("Réussi")
        await expect(page.get_by_text("Reçu en cours d'émission")).to_be_visible()
        await expect(page.get_by_role("link", name="Télécharger le reçu")).to_have_count(0)
        await assert_accessible(page, "status page waiting for the receipt")
        await asyncio.to_thread(issue_receipt, settled)
        await expect(page.get_by_role("link", name="Télécharger le reçu")).to_be_visible(timeout=20_000)
        assert len(loads) == 2  # the page as opened, then one reload once the receipt was there
        await expect(page.get_by_text("Reçu en cours d'émission")).to_have_count(0)
    finally:
        await context.close()
