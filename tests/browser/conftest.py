"""Browser scenarios: Debian's chromium driven by Playwright against the real stack (``stack``).

Chromium is installed by the test setup when missing and the tests run as root (``apt-get install -y
chromium``); elsewhere the scenarios are skipped with the reason shown, except in CI, where
``PORTNET_REQUIRE_BROWSER=1`` (set by .ci/run) turns that skip into a failure. Each scenario runs at
desktop width and at 390 px (a phone).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.api import Stack
from tests.support.browser import SCENARIO_VIEWPORTS, VIEWPORTS, Scenario, Viewport

CHROMIUM = "/usr/bin/chromium"
REQUIRED = os.environ.get("PORTNET_REQUIRE_BROWSER") == "1"

pytestmark = pytest.mark.browser


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"browser tests cannot run (PORTNET_REQUIRE_BROWSER=1): {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


def _install_chromium() -> str | None:
    """Installs Debian's chromium when we may (root with apt-get); returns why not otherwise."""
    if os.path.exists(CHROMIUM):
        return None
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return (
            f"{CHROMIUM} is missing; install Debian's chromium (sudo apt-get install -y chromium) "
            "to run the browser scenarios"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)  # noqa: S603
        if done.returncode != 0 and command[1] == "install":
            return f"apt-get install chromium failed: {done.stderr.strip()[-300:]}"
    return None if os.path.exists(CHROMIUM) else f"{CHROMIUM} still missing after apt-get install"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    try:
        import axe_playwright_python  # noqa: F401
        import playwright  # noqa: F401
    except ImportError as exc:
        _unavailable(f"Playwright or axe-playwright-python is not installed ({exc}); run make setup")
    problem = _install_chromium()
    if problem:
        _unavailable(problem)
    return CHROMIUM


@pytest_asyncio.fixture(scope="session")
async def chromium(chromium_path: str) -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        # --no-sandbox: chromium refuses to start as root with its sandbox (CI runs as root).
        browser = await playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(params=SCENARIO_VIEWPORTS, ids=SCENARIO_VIEWPORTS)
def viewport(request: pytest.FixtureRequest) -> Viewport:
    return VIEWPORTS[request.param]


@pytest_asyncio.fixture
async def scenario(
    chromium: object, stack: Stack, viewport: Viewport, request: pytest.FixtureRequest
) -> AsyncIterator[Scenario]:
    """A fresh browser context (no cookies) at the scenario's width, on the running portal."""
    context = await chromium.new_context(  # type: ignore[attr-defined]
        viewport={"width": viewport.width, "height": viewport.height},
        locale="fr-MA",
        timezone_id="Africa/Casablanca",
        is_mobile=viewport.is_phone,
        has_touch=viewport.is_phone,
    )
    context.set_default_timeout(15_000)
    page = await context.new_page()
    name = request.node.originalname.removeprefix("test_")
    try:
        yield Scenario(page=page, viewport=viewport, name=name, base_url=stack.base_url)
    finally:
        await context.close()
