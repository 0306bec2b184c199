"""The portal's GET /metrics: it counts what operators watch, names routes by template, computes the
overdue-hold gauge, and in production answers only loopback or the METRICS_TOKEN bearer."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session
from starlette.requests import Request

from portnet.models import Invoice, InvoiceHold, utcnow
from portnet.settings import Settings, get_settings
from tests.support.metrics import value
from tests.support.partners import RecordingTemporal, new_attempt
from web.app import create_app
from web.metrics import OVERDUE_GRACE, allowed, channel_deadline, overdue_holds

TOKEN = "m" * 40


@pytest_asyncio.fixture
async def portal() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(get_settings())
    app.state.temporal = RecordingTemporal()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=get_settings().public_base_url) as http:
        yield http


async def scrape(http: httpx.AsyncClient) -> str:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_login_failures_and_locks_are_counted(portal: httpx.AsyncClient) -> None:
    before = await scrape(portal)
    settings = get_settings()
    for _ in range(settings.login_max_failures + 1):
        await portal.post("/api/v1/session", json={"username": "tmta", "password": "wrong-password"})
    after = await scrape(portal)
    failures = value(after, "portnet_login_failures_total") - value(before, "portnet_login_failures_total")
    assert failures >= settings.login_max_failures
    locks = value(after, "portnet_login_locks_total") - value(before, "portnet_login_locks_total")
    assert locks >= 1


async def test_callback_verdicts_are_counted_by_partner(portal: httpx.AsyncClient) -> None:
    before = await scrape(portal)
    answer = await portal.post(
        "/api/v1/callbacks/cmi",
        content=b"oid=nothing",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    after = await scrape(portal)
    series = "portnet_partner_callbacks_total"
    assert value(after, series, partner="cmi", verdict="malformed") == (
        value(before, series, partner="cmi", verdict="malformed") + 1
    )


async def test_http_latency_is_labelled_by_route_template(portal: httpx.AsyncClient) -> None:
    await portal.get("/api/v1/payments/PN000000000001")
    await portal.get("/no/such/page")
    text = await scrape(portal)
    assert value(text, "portnet_http_request_seconds_count", route="/api/v1/payments/{payment_id}") >= 1
    assert value(text, "portnet_http_request_seconds_count", route="unmatched") >= 1
    assert "PN000000000001" not in text


async def test_scrape_time_gauges(portal: httpx.AsyncClient) -> None:
    text = await scrape(portal)
    assert "portnet_attempts_overdue_holding{" in text
    assert value(text, "portnet_temporal_reachable") == 0  # the stand-in has no service client


def test_an_attempt_holding_past_its_deadline_is_counted(
    db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    settings = get_settings()
    before = overdue_holds(settings).get("cmi_card", 0)
    invoice = make_invoice()
    ledger = new_attempt(db, invoice)
    late = utcnow() - channel_deadline("cmi_card", settings) - OVERDUE_GRACE - timedelta(minutes=1)
    db.add(InvoiceHold(invoice_id=ledger.invoice_id, payment_id=ledger.payment_id, previous_status="unpaid",
                       created_at=late))
    db.commit()
    assert overdue_holds(settings)["cmi_card"] == before + 1
    fresh = new_attempt(db, make_invoice())
    db.add(InvoiceHold(invoice_id=fresh.invoice_id, payment_id=fresh.payment_id, previous_status="unpaid"))
    db.commit()
    assert overdue_holds(settings)["cmi_card"] == before + 1


def _request(host: str, authorization: str | None = None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return Request({"type": "http", "method": "GET", "path": "/metrics", "headers": headers,
                    "client": (host, 40000)})


def _production(token: str = "") -> Settings:
    return Settings(portnet_env="production", metrics_token=token)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_production_answers_loopback(host: str) -> None:
    assert allowed(_request(host), _production())


def test_production_refuses_others_without_the_token() -> None:
    assert not allowed(_request("10.0.0.7"), _production())
    assert not allowed(_request("10.0.0.7", f"Bearer {TOKEN}"), _production())  # no token configured
    assert not allowed(_request("10.0.0.7", "Bearer wrong"), _production(TOKEN))
    assert not allowed(_request("10.0.0.7", TOKEN), _production(TOKEN))
    assert not allowed(_request("unix-socket"), _production(TOKEN))


def test_production_answers_the_bearer_token() -> None:
    assert allowed(_request("10.0.0.7", f"Bearer {TOKEN}"), _production(TOKEN))
    assert allowed(_request("10.0.0.7", f"bearer {TOKEN}"), _production(TOKEN))


def test_development_answers_everyone() -> None:
    assert allowed(_request("10.0.0.7"), Settings(portnet_env="development"))


async def test_production_metrics_endpoint_is_a_404_to_strangers(portal: httpx.AsyncClient) -> None:
    app = portal._transport.app  # type: ignore[attr-defined]
    saved = app.state.settings
    app.state.settings = _production(TOKEN)
    try:
        # ASGITransport's client is 127.0.0.1: loopback passes; the same request from elsewhere does not.
        assert (await portal.get("/metrics")).status_code == 200
        app.state.settings = _production(TOKEN).model_copy(update={"metrics_token": TOKEN})
        stranger = httpx.ASGITransport(app=app, client=("192.0.2.10", 5000))
        async with httpx.AsyncClient(transport=stranger, base_url="http://portal.test") as http:
            assert (await http.get("/metrics")).status_code == 404
            ok = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200 and "portnet_http_request_seconds" in ok.text
    finally:
        app.state.settings = saved


async def test_liveness_and_readiness(portal: httpx.AsyncClient) -> None:
    assert (await portal.get("/healthz")).json() == {"status": "ok"}
    ready = await portal.get("/readyz")
    assert ready.status_code == 503  # the stand-in is no Temporal
    assert ready.json()["database"] == "ok"


async def test_reconciliation_findings_are_exported(portal: httpx.AsyncClient) -> None:
    from portnet import reconciliation

    series = "portnet_reconciliation_findings_total"
    labels = {"partner": "cmi", "kind": "expired_attempt", "outcome": "recorded"}
    before = value(await scrape(portal), series, **labels)
    run_id = f"test-metrics-{secrets.token_hex(6)}"
    finding = reconciliation.Finding(
        dedupe_key=run_id, run_id=run_id, kind="expired_attempt", outcome="recorded", partner="cmi"
    )
    reconciliation.start_run(run_id)
    assert reconciliation.record(finding)
    assert not reconciliation.record(finding)  # the same finding again is not counted again
    assert value(await scrape(portal), series, **labels) == before + 1
