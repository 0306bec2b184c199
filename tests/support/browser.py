"""Browser scenarios' shared steps: check a page (no sideways scroll on a phone, axe-core with no
serious or critical violation, a screenshot under var/screenshots/), log in through the form, read
the sandbox mailbox.

Scenarios drive Debian's chromium through Playwright's async API: the portal under test runs on the
pytest session's event loop (``stack``), which a synchronous driver would block.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.support.api import TLS
from tests.support.workers import eventually

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
# The README's pictures of the guide's screens: written only when asked (`make screenshots`).
README_SCREENSHOTS = ROOT / "docs" / "screenshots"
WRITE_README_SCREENSHOTS = os.environ.get("PORTNET_README_SCREENSHOTS") == "1"
# The README shows these screens at 390 px too (the others at desktop width only: they weigh).
README_PHONE_SCREENS = ("accueil", "regler-des-factures", "cmi-page-carte")
BLOCKING_IMPACTS = ("serious", "critical")
# The page audits, a step's screenshot and its axe-core check, look at the HTML and CSS the portal
# serves, which no more depend on the ledger's database than on the time of day; they are about a
# third of the browser scenarios' CPU. `make test` runs them in the SQLite suite and sets
# PORTNET_BROWSER_AUDITS=0 for the PostgreSQL suite, whose scenarios still take every step and check
# everything else (the pages reached, their texts, no sideways scroll on a phone, the payments).
AUDITS = os.environ.get("PORTNET_BROWSER_AUDITS", "1") != "0"
PHONE_WIDTH = 390
PAID = "Télécharger le reçu"  # the status page once the attempt succeeded (and no longer reloads)


@dataclass(frozen=True)
class Viewport:
    name: str
    width: int
    height: int

    @property
    def is_phone(self) -> bool:
        return self.width <= PHONE_WIDTH


VIEWPORTS = {
    "desktop": Viewport("desktop", 1366, 900),
    "phone": Viewport("phone", PHONE_WIDTH, 844),
}
# The widths each scenario runs at. The phone width checks the layout (no sideways scroll, touch)
# and its page audits, which no more depend on the ledger's database than the audits do: `make test`
# runs both widths in the SQLite suite and sets PORTNET_BROWSER_VIEWPORTS=desktop for the PostgreSQL
# suite, where every scenario still runs every step against PostgreSQL (half the suite's chromium).
SCENARIO_VIEWPORTS = sorted(
    {name.strip() for name in os.environ.get("PORTNET_BROWSER_VIEWPORTS", ",".join(VIEWPORTS)).split(",")}
)
assert SCENARIO_VIEWPORTS and set(SCENARIO_VIEWPORTS) <= VIEWPORTS.keys(), (
    f"PORTNET_BROWSER_VIEWPORTS: a comma-separated list of {sorted(VIEWPORTS)}, not {SCENARIO_VIEWPORTS}"
)


@dataclass
class Scenario:
    """One scenario at one width: its page, and where its screenshots go."""

    page: Page
    viewport: Viewport
    name: str
    base_url: str
    steps: int = 0

    def __post_init__(self) -> None:
        """An earlier run's pictures of this scenario at this width go: the folder shows this run.

        Two auditing runs at once (the suite started by hand on both databases) may remove or write
        the same pictures, hence ``missing_ok`` here and the atomic rename in ``screenshot``."""
        if not AUDITS:  # this run takes none: the pictures are the auditing run's
            return
        for stale in SCREENSHOTS.glob(f"{self.name}-{self.viewport.name}-*.png"):
            stale.unlink(missing_ok=True)

    async def screenshot(self, step: str, readme: str | None = None) -> None:
        """Only the picture (for a page that is about to reload itself).

        ``readme``: the name of the README's picture of this screen (docs/screenshots/<readme>.png,
        ``<readme>-phone.png`` at 390 px for README_PHONE_SCREENS), rewritten when
        PORTNET_README_SCREENSHOTS=1 (`make screenshots`)."""
        self.steps += 1
        if not AUDITS:
            return
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
        path = SCREENSHOTS / f"{self.name}-{self.viewport.name}-{self.steps:02d}-{slug}.png"
        written = path.with_name(f".{os.getpid()}-{path.name}")
        await self.page.screenshot(path=str(written), full_page=True)
        phone = self.viewport.is_phone
        if readme and WRITE_README_SCREENSHOTS and (not phone or readme in README_PHONE_SCREENS):
            README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(written, README_SCREENSHOTS / f"{readme}{'-phone' if phone else ''}.png")
        os.replace(written, path)

    async def check(self, step: str, readme: str | None = None) -> None:
        """The page as a person sees it now: screenshot, no sideways scroll, no serious a11y issue."""
        await self.page.wait_for_load_state("load")
        await self.screenshot(step, readme)
        if self.viewport.is_phone:
            widths = await self.page.evaluate(
                "() => [document.documentElement.scrollWidth, window.innerWidth]"
            )
            sideways = f"{step}: the page scrolls sideways at {widths[1]} px ({widths[0]} px wide)"
            assert widths[0] <= widths[1], sideways
        await assert_accessible(self.page, step)


async def assert_accessible(page: Page, step: str) -> None:
    """axe-core finds no serious or critical violation on the page (in the suite that audits: AUDITS)."""
    if not AUDITS:
        return
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    violations: list[dict[str, Any]] = results.response.get("violations", [])
    blocking = [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]
    details = [
        f"{v['id']} ({v['impact']}): {v.get('help')} — {[n.get('target') for n in v.get('nodes', [])][:5]}"
        for v in blocking
    ]
    assert not blocking, f"{step}: accessibility violations:\n" + "\n".join(details)


async def log_in(scenario: Scenario, username: str, password: str) -> None:
    """Through the login form, as ``username`` (whoever was logged in before is not any more)."""
    page = scenario.page
    await page.context.clear_cookies()
    await page.goto(scenario.base_url + "/connexion")
    await page.get_by_label("Utilisateur").fill(username)
    await page.get_by_label("Mot de passe", exact=True).fill(password)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_load_state("load")


async def last_mail_to(sandbox_url: str, address: str, subject_part: str) -> dict[str, Any]:
    """The newest mail the sandbox mailbox received for ``address`` whose subject says so."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10, verify=TLS) as client:

        async def probe() -> dict[str, Any] | None:
            mails = (await client.get("/sandbox/mail", params={"to": address})).json()
            found = [m for m in mails if subject_part in m["subject"]]
            return found[-1] if found else None

        return await eventually(probe, timeout=20, every=0.2)


async def settle_from_the_list(scenario: Scenario, number: str) -> None:
    """Gestion des factures: find the invoice, tick it, "Régler Factures": the confirmation screen."""
    page = scenario.page
    await page.goto(f"{scenario.base_url}/factures?number={number}")
    await page.get_by_label(f"Sélectionner la facture {number}").check()
    await page.get_by_role("button", name="Régler Factures").click()
    await page.get_by_role("heading", name="Régler des factures").wait_for()


async def pay_now_at(scenario: Scenario, number: str, username: str, password: str) -> None:
    """Logged in as ``username``, on the confirmation screen of invoice ``number``."""
    await log_in(scenario, username, password)
    await settle_from_the_list(scenario, number)


async def until_paid(scenario: Scenario) -> None:
    """The status page reloads itself while the workflow settles; then it offers the receipt."""
    await expect(scenario.page.get_by_role("link", name=PAID)).to_be_visible(timeout=45_000)
    await expect(scenario.page.locator(".status-card__status")).to_contain_text("Réussi")


async def card_on_cmi_page(scenario: Scenario, pan: str, readme: bool = False) -> Page:
    """From the confirmation screen: CMI's card, CMI's hosted page, the card typed and "Payer".

    ``readme``: these screens are the README's pictures of the confirmation and CMI's page."""
    page = scenario.page
    await page.get_by_role("radio", name="Carte bancaire").check()
    await expect(page.get_by_role("button", name="Payer avec CMI carte bancaire")).to_be_visible()
    await scenario.check("confirmation with the platforms", readme="regler-des-factures" if readme else None)
    await page.get_by_role("button", name="Payer avec CMI carte bancaire").click()
    # Our redirect page submits CMI's signed form by itself: CMI's hosted page asks for the card.
    await expect(page.get_by_role("heading", name="Paiement par carte bancaire")).to_be_visible()
    await scenario.screenshot("CMI hosted card page", readme="cmi-page-carte" if readme else None)
    await page.get_by_label("Numéro de carte").fill(pan)
    await page.get_by_label("Date d'expiration (MM/AA)").fill("12/30")
    await page.get_by_label("Cryptogramme (CVV)").fill("000")
    await page.get_by_role("button", name="Payer").click()
    return page
