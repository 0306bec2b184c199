"""What the partner-message tests share: the portal in process, a Temporal stand-in, a live attempt."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from sqlmodel import Session
from temporalio.service import RPCError, RPCStatusCode

from portnet.models import Invoice, Payment, PaymentInvoice
from portnet.settings import get_settings
from web.app import create_app
from workflows.types import AmanpayDecision, CmiDecision, FatouratiDecision


class RecordingTemporal:
    """Stands for Temporal: records whatever reaches it and answers as an accepting workflow would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def get(self) -> RecordingTemporal:
        return self

    def get_workflow_handle(self, workflow_id: str) -> Any:
        fake = self
        payment_id = workflow_id.removeprefix("payment-")

        class Handle:
            async def execute_update(self, update: Any, arg: Any) -> Any:
                fake.calls.append((workflow_id, update.__name__))
                return {
                    "cmi_result": CmiDecision("ACTION=POSTAUTH", "approved"),
                    "fatourati_result": FatouratiDecision("accepted", "paid", f"REC-{payment_id}"),
                    "amanpay_result": AmanpayDecision(True, "paid"),
                }[update.__name__]

            async def signal(self, signal: Any, arg: Any) -> None:
                fake.calls.append((workflow_id, signal.__name__))

        return Handle()


class ClosedWorkflows:
    """Stands for Temporal once the attempt's run has closed: every Update and Signal is NOT_FOUND."""

    async def get(self) -> ClosedWorkflows:
        return self

    def get_workflow_handle(self, workflow_id: str) -> Any:
        def closed() -> RPCError:
            return RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")

        class Handle:
            async def execute_update(self, update: Any, arg: Any) -> Any:
                raise closed()

            async def signal(self, signal: Any, arg: Any) -> None:
                raise closed()

        return Handle()


@dataclass
class Ledger:
    payment_id: str
    invoice_id: int


class Portal:
    """The portal app called in process, synchronously (hypothesis drives plain functions)."""

    def __init__(self) -> None:
        self.app = create_app(get_settings())
        self.app.state.temporal = RecordingTemporal()
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://portal.test")

    def post(self, path: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.loop.run_until_complete(self.http.post(path, content=content, headers=headers))

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


def new_attempt(db: Session, invoice: Invoice, channel: str = "cmi_card") -> Ledger:
    """A live attempt on one invoice, as the workflow would have written it."""
    payment_id = "PN" + secrets.token_hex(6).upper()
    db.add(
        Payment(
            id=payment_id,
            workflow_id=f"payment-{payment_id}",
            channel=channel,
            amount=invoice.amount_ttc,
            status="awaiting_payer",
            company_id=invoice.company_id,
            invoice_numbers=invoice.number,
        )
    )
    db.flush()
    db.add(PaymentInvoice(payment_id=payment_id, invoice_id=invoice.id or 0, amount_ttc=invoice.amount_ttc))
    db.commit()
    return Ledger(payment_id, invoice.id or 0)
