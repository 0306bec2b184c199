"""The status page of a moving attempt: portal.js waits on the API's long-poll; without JavaScript the
page reloads itself every 3 s, and a link refreshes it by hand."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import httpx
import pytest_asyncio
from sqlmodel import Session

from portnet.models import Invoice, Payment
from tests.support.pages import NoTemporal, logged_in
from tests.support.partners import new_attempt
from web.app import create_app


@pytest_asyncio.fixture
async def portal(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    app.state.temporal = NoTemporal()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as client:
        await logged_in(client, "sataa")
        yield client


def moving(db: Session, invoice: Invoice, status: str) -> str:
    ledger = new_attempt(db, invoice)
    payment = db.get(Payment, ledger.payment_id)
    assert payment is not None
    payment.status = status
    db.add(payment)
    db.commit()
    return ledger.payment_id


async def test_a_moving_attempt_is_watched_and_refreshes_without_javascript(
    portal: httpx.AsyncClient, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    payment_id = moving(db, make_invoice(), "awaiting_confirmation")
    page = await portal.get(f"/paiements/{payment_id}", params={"retour": "ok"})
    assert page.status_code == 200
    html = page.text
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in html
    watch = re.search(r'<p class="small muted" data-status-watch="([^"]+)" data-status="([^"]+)">', html)
    assert watch is not None and watch.groups() == (f"/api/v1/payments/{payment_id}", "awaiting_confirmation")
    assert f'<a href="/paiements/{payment_id}?retour=ok">Actualiser</a>' in html
    live = "Cette page se met à jour dès que l'état du paiement change."
    assert f"<span data-status-live hidden>{live}</span>" in html
    # The page's script is the portal's file (the CSP runs no inline script), and may call the API.
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    script = await portal.get("/static/portal.js")
    assert "[data-status-watch]" in script.text and "?wait=25&since=" in script.text


async def test_a_finished_attempt_is_not_watched(
    portal: httpx.AsyncClient, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    payment_id = moving(db, make_invoice(), "cancelled")
    html = (await portal.get(f"/paiements/{payment_id}")).text
    assert "data-status-watch" not in html and 'http-equiv="refresh"' not in html
