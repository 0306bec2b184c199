"""The Temporal Web UI queries finance uses, as links from the finance pages.

Each is a visibility query on the payment workflows' search attributes (portnet/search_attributes.py:
``PaymentChannel``, ``PaymentStatus``, ``ClientCode``, ``EmitterCode``, ``InvoiceNumbers``,
``AmountTTC``) plus Temporal's own (``WorkflowType``, ``ExecutionStatus``, ``StartTime``), opened in
the Web UI's workflow list (``TEMPORAL_UI_URL``, the query URL-encoded). The README's finance section
shows the same queries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from portnet.localtime import LOCAL_TZ
from portnet.settings import Settings
from portnet.statuses import Channel

PAYMENTS = "WorkflowType = 'PaymentWorkflow'"
# An attempt still reserving, or approved but unconfirmed, this long after its start is stuck (cheques and
# transfers legitimately wait for finance for days).
STUCK_AFTER = timedelta(hours=1)
OFFLINE = ("cheque", "bank_transfer")
# What a search attribute value may hold in a link (invoice numbers, customs codes, channel codes).
_VALUE = re.compile(r"^[0-9A-Za-z/_.-]{1,40}$")


@dataclass(frozen=True)
class QueryLink:
    label: str
    query: str
    url: str


def workflows_url(settings: Settings, query: str) -> str:
    """The Web UI's workflow list filtered by ``query``."""
    base = settings.temporal_ui_url.rstrip("/")
    namespace = quote(settings.temporal_namespace, safe="")
    return f"{base}/namespaces/{namespace}/workflows?query={quote(query, safe='')}"


def _literal(value: str) -> str:
    if not _VALUE.match(value):
        raise ValueError(f"not a search attribute value: {value!r}")
    return f"'{value}'"


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def by_invoice(number: str) -> str:
    """Every payment attempt on an invoice."""
    return f"InvoiceNumbers = {_literal(number)}"


def by_company(customs_code: str) -> str:
    """Every payment attempt of a company, by its customs code."""
    return f"{PAYMENTS} AND ClientCode = {_literal(customs_code)}"


def stuck_attempts(now: datetime) -> str:
    """Running attempts still reserving, or approved and never confirmed, an hour after they began."""
    offline = ", ".join(_literal(c) for c in OFFLINE)
    return (
        f"{PAYMENTS} AND ExecutionStatus = 'Running'"
        " AND PaymentStatus IN ('started', 'awaiting_confirmation')"
        f" AND PaymentChannel NOT IN ({offline})"
        f" AND StartTime < '{_instant(now - STUCK_AFTER)}'"
    )


def channel_failures_today(channel: str, now: datetime) -> str:
    """A channel's failed attempts begun today (Casablanca day)."""
    midnight = now.astimezone(LOCAL_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        f"{PAYMENTS} AND PaymentChannel = {_literal(channel)} AND PaymentStatus = 'failed'"
        f" AND StartTime >= '{_instant(midnight)}'"
    )


def invoice_url(settings: Settings, number: str) -> str | None:
    """The invoice's attempts in the Web UI (None for a number a query cannot carry)."""
    return workflows_url(settings, by_invoice(number)) if _VALUE.match(number) else None


def finance_links(
    settings: Settings, now: datetime, customs_code: str | None = None, invoice: str | None = None
) -> list[QueryLink]:
    """The links of the finance payments page: the filter's invoice and company when given, stuck
    attempts, and each channel's failures today."""
    queries: list[tuple[str, str]] = []
    if invoice and _VALUE.match(invoice):
        queries.append((f"Facture {invoice}", by_invoice(invoice)))
    if customs_code and customs_code.isdigit():
        queries.append((f"Société {customs_code}", by_company(customs_code)))
    queries.append(("Tentatives bloquées", stuck_attempts(now)))
    queries += [(f"Échecs du jour : {c.label}", channel_failures_today(c.value, now)) for c in Channel]
    return [QueryLink(label, query, workflows_url(settings, query)) for label, query in queries]
