"""The portal's ``GET /metrics`` (Prometheus text format) and the HTTP latency it reports.

What is counted and where is portnet/metrics.py. Here: the route, who may read it, the gauges worked
out at scrape time (live attempts still holding invoices past their deadline, Temporal reachable),
and the middleware that times every request by its route template (``/api/v1/payments/{payment_id}``,
never the raw path, so one series per route whatever the ids).

Who may read it: anyone in development; in production a loopback client (a scraper beside the
process), or whoever sends ``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant time).
Everyone else gets a 404, as if there were nothing here.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import prometheus_client
from fastapi import APIRouter, Request, Response
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portnet import metrics
from portnet.db import get_engine
from portnet.models import InvoiceHold, Payment, utcnow
from portnet.settings import Settings
from portnet.statuses import Channel

router = APIRouter(tags=["operations"], include_in_schema=False)

# A hold is overdue this long after its channel's deadline: the workflow's timer fires at the deadline
# and its release activity takes seconds, so anything still held past the margin is stuck.
OVERDUE_GRACE = timedelta(minutes=10)


def channel_deadline(channel: str, settings: Settings) -> timedelta:
    """How long an attempt on ``channel`` may hold its invoices (the workflow's own deadline)."""
    seconds = {
        Channel.CMI_CARD.value: settings.cmi_payment_deadline_seconds,
        Channel.CMI_FATOURATI.value: settings.fatourati_expiry_seconds,
        Channel.AMANPAY_CODE.value: settings.amanpay_code_ttl_seconds,
        Channel.AMANPAY_AMANTY.value: settings.amanpay_redirect_deadline_seconds,
        Channel.AMANPAY_PAYDIRECT.value: settings.paydirect_step_timeout_seconds,
        Channel.CHEQUE.value: settings.offline_payment_deadline_seconds,
        Channel.BANK_TRANSFER.value: settings.offline_payment_deadline_seconds,
    }.get(channel, settings.offline_payment_deadline_seconds)
    return timedelta(seconds=seconds)


def overdue_holds(settings: Settings) -> dict[str, int]:
    """Live attempts per channel whose invoices are still held past deadline + grace.

    Only live attempts hold invoices, so this reads a handful of rows, whatever the ledger's size.
    """
    with Session(get_engine()) as db:
        rows = db.exec(
            select(Payment.id, Payment.channel, InvoiceHold.created_at)
            .join(Payment, col(Payment.id) == InvoiceHold.payment_id)
            .distinct()
        ).all()
    now = utcnow()
    counts = {channel.value: 0 for channel in Channel}
    oldest: dict[str, tuple[str, datetime]] = {}
    for payment_id, channel, held_at in rows:
        oldest.setdefault(payment_id, (channel, held_at))
    for channel, held_at in oldest.values():
        if held_at < now - channel_deadline(channel, settings) - OVERDUE_GRACE:
            counts[channel] = counts.get(channel, 0) + 1
    return counts


class _ScrapeGauges(Collector):
    """Filled by the /metrics handler just before the registry is rendered."""

    def __init__(self) -> None:
        self.overdue: dict[str, int] = {}
        self.temporal_reachable: float | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        held = metrics.OVERDUE_HOLDS
        overdue = GaugeMetricFamily(held.name, held.help, labels=["channel"])
        for channel, count in sorted(self.overdue.items()):
            overdue.add_metric([channel], count)
        yield overdue
        if self.temporal_reachable is not None:
            reachable = metrics.TEMPORAL_REACHABLE
            yield GaugeMetricFamily(reachable.name, reachable.help, value=self.temporal_reachable)


_GAUGES = _ScrapeGauges()
prometheus_client.REGISTRY.register(_GAUGES)
_SCRAPE = asyncio.Lock()


def allowed(request: Request, settings: Settings) -> bool:
    if not settings.is_production:
        return True
    host = request.client.host if request.client else ""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    token = settings.metrics_token.strip()
    given = request.headers.get("authorization", "")
    scheme, _, credentials = given.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), token.encode()
    )


async def _temporal_reachable(request: Request) -> float:
    client = await request.app.state.temporal.get()
    if client is None:
        return 0.0
    try:
        await asyncio.wait_for(client.service_client.check_health(), timeout=2)
    except Exception:  # noqa: BLE001 - any failure is "unreachable"
        return 0.0
    return 1.0


@router.get("/metrics")
async def metrics_endpoint(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if not allowed(request, settings):
        return Response(status_code=404)
    async with _SCRAPE:
        _GAUGES.overdue = await run_in_threadpool(overdue_holds, settings)
        _GAUGES.temporal_reachable = await _temporal_reachable(request)
        body = prometheus_client.generate_latest()
    return Response(body, media_type=prometheus_client.CONTENT_TYPE_LATEST)


class RequestTimer:
    """Pure ASGI middleware: ``portnet_http_request_seconds`` by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the answer started is a 500 to the client

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics.http_request(scope["method"], route_of(scope), status, time.perf_counter() - started)


# A route's own series for a kind of answer that is slow by design (web/api/payments.py's long-poll,
# ``…?wait``): set in the scope by the endpoint, so it does not hide in the route's plain latency.
ROUTE_VARIANT = "portnet.route_variant"


def route_of(scope: Scope) -> str:
    """The matched route's template; mounts by their prefix; anything else one ``unmatched`` series."""
    variant = scope.get(ROUTE_VARIANT)
    if isinstance(variant, str):
        return variant
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if str(scope.get("path", "")).startswith("/static/"):
        return "/static"
    return "unmatched"
