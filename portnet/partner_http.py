"""The transport under every partner client: each call timed and its failures counted.

The adapters' long-lived clients (activities/http.py: emitters, fatourati, amanpay (PayDirect
included), marsa_maroc) send through :class:`MeasuredTransport`, which records
``portnet_partner_call_seconds`` (time to the answer's headers, by partner and status class) and
``portnet_partner_call_errors`` (timeouts, connection errors, 5xx) through portnet/metrics.py. The
adapters' own handling of each answer is untouched: the transport only watches.
"""

from __future__ import annotations

import time

import httpx

from portnet import metrics


class MeasuredTransport(httpx.AsyncBaseTransport):
    def __init__(self, partner: str, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.partner = partner
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TimeoutException:
            self._failed(started, "timeout")
            raise
        except httpx.TransportError:
            self._failed(started, "connection")
            raise
        metrics.partner_call(self.partner, time.perf_counter() - started, f"{response.status_code // 100}xx")
        if response.status_code >= 500:
            metrics.partner_call_error(self.partner, "http_5xx")
        return response

    def _failed(self, started: float, kind: str) -> None:
        metrics.partner_call(self.partner, time.perf_counter() - started, "error")
        metrics.partner_call_error(self.partner, kind)

    async def aclose(self) -> None:
        await self._inner.aclose()
