"""Finance's reconciliation report: the API and the page show runs and findings, to finance only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest_asyncio
from sqlmodel import Session

from portnet import reconciliation
from web.app import create_app


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as client:
        yield client


async def login(api: httpx.AsyncClient, username: str) -> None:
    response = await api.post("/api/v1/session", json={"username": username, "password": "Portnet2026!"})
    assert response.status_code == 200, response.text


def a_run_with_findings(db: Session) -> tuple[str, str, str]:
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    payment_id = "PN" + uuid.uuid4().hex[:12].upper()
    reconciliation.start_run(run_id)
    reconciliation.record(
        reconciliation.Finding(
            dedupe_key=f"expired_attempt:{payment_id}",
            run_id=run_id,
            kind="expired_attempt",
            outcome="unapplied",
            payment_id=payment_id,
            partner="fatourati",
            amount=Decimal("120.00"),
            detail="Paiement constaté par la réconciliation chez le partenaire",
            unapplied_id=7,
            partner_transaction="FTR-REPORT",
        )
    )
    released = "PN" + uuid.uuid4().hex[:12].upper()
    reconciliation.record(
        reconciliation.Finding(
            f"orphan_hold:{released}", run_id, "orphan_hold", "released", released, amount=Decimal("5.00")
        )
    )
    reconciliation.finish_run(run_id, candidates=2, errors=0)
    return run_id, payment_id, released


async def test_finance_reads_runs_and_open_findings(api: httpx.AsyncClient, db: Session) -> None:
    run_id, payment_id, released = a_run_with_findings(db)
    await login(api, "finance")
    report = (await api.get("/api/v1/finance/reconciliation")).json()
    [run] = [r for r in report["runs"] if r["id"] == run_id]
    assert (run["candidates"], run["findings"], run["errors"]) == (2, 2, 0) and run["finished_at"]
    [finding] = [f for f in report["findings"] if f["payment_id"] == payment_id]
    assert finding["amount"] == "120.00" and finding["outcome"] == "unapplied" and finding["needs_finance"]
    assert finding["outcome_label"] == "Encaissement non affecté enregistré"
    # A released hold is settled by the run: counted, not listed as open.
    assert not [f for f in report["findings"] if f["payment_id"] == released]
    assert report["totals"]["orphan_hold"]["released"] >= 1
    everything = (await api.get("/api/v1/finance/reconciliation", params={"all": "true"})).json()
    assert [f for f in everything["findings"] if f["payment_id"] == released]

    page = await api.get("/finance/reconciliation")
    assert page.status_code == 200
    assert "Réconciliation" in page.text and payment_id in page.text and "FTR-REPORT" in page.text
    assert 'href="/finance/reconciliation"' in (await api.get("/finance/paiements")).text


async def test_report_is_for_finance_only(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/v1/finance/reconciliation")).status_code == 401
    await login(api, "sataa")
    assert (await api.get("/api/v1/finance/reconciliation")).status_code == 403
    assert (await api.get("/finance/reconciliation")).status_code == 403
