"""The whole stack on real sockets (tests/integration/conftest.py starts it), driven over HTTP as
the payer, a partner or finance would: start a payment on each channel, pay at the sandboxes, read
a status until it changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from portnet.protocols import fatourati as fatourati_protocol
from portnet.settings import get_settings
from tests.support.workers import eventually

# One TLS context for the suite's HTTP clients: httpx builds one per client by default, parsing
# certifi's bundle each time (about 30 ms of CPU), and these clients speak plain HTTP to 127.0.0.1.
TLS = httpx.create_ssl_context()


@dataclass
class Stack:
    """The running stack: the dev server, the portal's app (its settings may be swapped per test)."""

    env: WorkflowEnvironment
    app: FastAPI
    base_url: str
    task_queue: str
    sandbox_url: str


def sandbox_url(path: str) -> str:
    """``/sandbox/...`` at the sandboxes' server, for a client whose base URL is the portal's."""
    return get_settings().sandbox_base_url.rstrip("/") + path


async def login(base_url: str, username: str, password: str = "Portnet2026!") -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=30, verify=TLS)
    response = await client.post("/api/v1/session", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return client


async def until_status(client: httpx.AsyncClient, payment_id: str, *statuses: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(f"/api/v1/payments/{payment_id}")).json()
        return body if body["status"] in statuses else None

    return await eventually(probe, timeout=30)


async def until_receipt(client: httpx.AsyncClient, payment_id: str) -> dict[str, Any]:
    """A succeeded attempt once its receipt is issued (a moment after the settlement, by its own
    activity): ``receipt_url`` is null until then."""

    async def probe() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(f"/api/v1/payments/{payment_id}")).json()
        return body if body["status"] == "succeeded" and body["receipt_url"] else None

    return await eventually(probe, timeout=30)


async def status_of(client: httpx.AsyncClient, invoice_id: int) -> str:
    """An invoice's status as the API shows it."""
    body: dict[str, Any] = (await client.get(f"/api/v1/invoices/{invoice_id}")).json()
    return str(body["status"])


# --- CMI card ---------------------------------------------------------------------------------------


VISA = {"pan": "4000000000000010", "expiry": "12/30", "cvv": "000"}


async def start_card_payment(client: httpx.AsyncClient, invoice_ids: list[int]) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/payments",
        json={
            "invoice_ids": invoice_ids,
            "channel": "cmi_card",
            "payer": {"name": "Yassine Alaoui", "email": "tresorerie@sataa.ma"},
        },
    )
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    assert payment["status"] == "awaiting_payer"
    return payment


async def open_cmi_page(anonymous: httpx.AsyncClient, payment: dict[str, Any]) -> httpx.Response:
    """What the payer's browser does with the auto-submitted form."""
    action = payment["next_action"]
    assert action["type"] == "redirect_form"
    page = await anonymous.post(action["url"], data=action["fields"])
    assert page.status_code == 200, page.text
    return page


async def pay(anonymous: httpx.AsyncClient, oid: str, card: dict[str, Any]) -> dict[str, Any]:
    response = await anonymous.post(sandbox_url("/sandbox/cmi/card-payments"), json={"oid": oid, **card})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# --- CMI Fatourati ------------------------------------------------------------------------------------


async def start_fatourati(client: httpx.AsyncClient, invoice_ids: list[int]) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/payments",
        json={
            "invoice_ids": invoice_ids,
            "channel": "cmi_fatourati",
            "payer": {"name": "Yassine Alaoui", "email": "tresorerie@sataa.ma"},
        },
    )
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    assert payment["status"] == "awaiting_payer"
    assert payment["next_action"]["type"] == "fatourati_reference"
    return payment


def callback_fields(
    payment: dict[str, Any], txn: str, amount: str | None = None, code: str = "0"
) -> dict[str, str]:
    settings = get_settings()
    fields: dict[str, object] = {
        "tokenRef": payment["next_action"]["fields"]["reference"],
        "orderId": payment["id"],
        "totalAmount": amount or payment["amount"],
        "currency": "504",
        "transactionDate": datetime.now(UTC).isoformat(),
        "transactionNumber": txn,
        "channel": "cih",
        "operator": "CIH Bank",
        "decisionCode": code,
        "merchantCode": settings.fatourati_merchant_code,
        "storeId": settings.fatourati_store_id,
    }
    signed = fatourati_protocol.signed(fields, fatourati_protocol.CALLBACK, settings.fatourati_api_key)
    return {k: str(v) for k, v in signed.items()}


# --- Amanpay and PayDirect ------------------------------------------------------------------------------


CONTRACT = {
    "contract_number": "PD1002457",
    "cin": "BE123456",
    "mandataire": "Yassine Alaoui",
    "phone": "+212600000001",
    "email": "tresorerie@sataa.ma",
}


async def start_amanpay(
    client: httpx.AsyncClient, invoice_ids: list[int], channel: str, payer: dict[str, str]
) -> httpx.Response:
    return await client.post(
        "/api/v1/payments", json={"invoice_ids": invoice_ids, "channel": channel, "payer": payer}
    )


async def last_sms_code(anonymous: httpx.AsyncClient, phone: str, payment_id: str) -> str:
    async def probe() -> str | None:
        messages = (await anonymous.get(sandbox_url("/sandbox/sms"), params={"to": phone})).json()
        for message in messages:
            if payment_id in message["text"]:
                found = re.search(r"code secret est (\d{6})", message["text"])
                return found.group(1) if found else None
        return None

    return await eventually(probe, timeout=10)


# --- cheque and bank transfer ---------------------------------------------------------------------------


async def declare_transfer(
    client: httpx.AsyncClient, invoice_ids: list[int], **declaration: str
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/payments",
        json={
            "invoice_ids": invoice_ids,
            "channel": "bank_transfer",
            "declaration": declaration
            or {"transfer_reference": "VIR-TEST-0001", "transfer_date": date.today().isoformat()},
        },
    )
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    return payment
