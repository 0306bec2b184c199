"""How Temporal's answers about an attempt become HTTP answers: 409 when it is over, 503 when Temporal
is down, never a 500. A stand-in client raises exactly what temporalio raises (the real server's
answers are exercised in tests/integration/test_attempt_actions.py; races are hard to time there).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session, select
from temporalio.service import RPCError, RPCStatusCode

from portnet.models import Company, Payment, User
from web.app import create_app
from web.attempts import PaymentRefused
from web.finance import FinanceError, decide
from web.payments import request_cancel
from workflows.types import PaymentView

CLOSED = RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")
DOWN = RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Handle:
    def __init__(
        self, view: PaymentView | None, query_error: Exception | None, fail: Exception | None
    ) -> None:
        self.view, self.query_error, self.fail = view, query_error, fail
        self.signals: list[Any] = []

    async def query(self, query: Any) -> PaymentView | None:
        if self.query_error is not None:
            raise self.query_error
        return self.view

    async def signal(self, signal: Any, arg: Any) -> None:
        if self.fail is not None:
            raise self.fail
        self.signals.append(arg)

    async def execute_update(self, update: Any, arg: Any = None) -> Any:
        assert self.fail is not None, "only failing updates are stood in for"
        raise self.fail


class FakeTemporal:
    def __init__(
        self,
        view: PaymentView | None = None,
        query_error: Exception | None = None,
        fail: Exception | None = None,
    ) -> None:
        self.handle = Handle(view, query_error, fail)

    async def get(self) -> FakeTemporal:
        return self

    def get_workflow_handle(self, workflow_id: str) -> Handle:
        return self.handle


def view(status: str, channel: str = "cmi_card") -> PaymentView:
    return PaymentView(
        id="PN0", workflow_id="payment-PN0", status=status, channel=channel, amount="120.00", invoice_ids=[]
    )


def payment(db: Session, channel: str = "cmi_card", status: str = "started") -> Payment:
    company = db.exec(select(Company).where(Company.customs_code == "290240")).one()
    pid = "PN" + uuid.uuid4().hex[:12].upper()
    row = Payment(
        id=pid,
        workflow_id=f"payment-{pid}",
        channel=channel,
        amount=Decimal("120.00"),
        status=status,
        company_id=company.id or 0,
    )
    db.add(row)
    db.commit()
    return row


@pytest.mark.parametrize(
    ("fake", "status", "code"),
    [
        (FakeTemporal(view("awaiting_payer"), fail=CLOSED), 409, "attempt_over"),  # ended meanwhile
        (FakeTemporal(view("awaiting_payer"), fail=DOWN), 503, "unavailable"),
        (FakeTemporal(query_error=CLOSED), 409, "attempt_over"),
        (FakeTemporal(query_error=DOWN), 503, "unavailable"),
        (FakeTemporal(view("succeeded")), 409, "attempt_over"),
        (FakeTemporal(view("cancelled")), 409, "attempt_over"),
        (FakeTemporal(view("awaiting_confirmation")), 409, "attempt_over"),  # card: money accepted
    ],
)
async def test_request_cancel_refusals(db: Session, fake: FakeTemporal, status: int, code: str) -> None:
    with pytest.raises(PaymentRefused) as refused:
        await request_cancel(fake, payment(db), "Annulé par sataa")  # type: ignore[arg-type]
    assert (refused.value.status_code, refused.value.code) == (status, code)
    assert fake.handle.signals == []


@pytest.mark.parametrize(
    "state", [view("started"), view("awaiting_payer"), view("awaiting_confirmation", channel="cheque")]
)
async def test_request_cancel_signals_a_live_attempt(db: Session, state: PaymentView) -> None:
    fake = FakeTemporal(state)
    await request_cancel(fake, payment(db), "Annulé par sataa")  # type: ignore[arg-type]
    assert fake.handle.signals == ["Annulé par sataa"]


@pytest.mark.parametrize(("error", "status"), [(CLOSED, 409), (DOWN, 503)])
async def test_finance_decision_on_a_closed_or_unreachable_workflow(
    db: Session, error: RPCError, status: int
) -> None:
    row = payment(db, channel="bank_transfer", status="awaiting_confirmation")
    finance = db.exec(select(User).where(User.username == "finance")).one()
    fake = FakeTemporal(view("awaiting_confirmation", channel="bank_transfer"), fail=error)
    with pytest.raises(FinanceError) as refused:
        await decide(fake, db, finance, row.id, True, "relevé")  # type: ignore[arg-type]
    assert refused.value.status_code == status


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as client:
        client.app = app  # type: ignore[attr-defined]
        credentials = {"username": "sataa", "password": "Portnet2026!"}
        assert (await client.post("/api/v1/session", json=credentials)).status_code == 200
        yield client


@pytest.mark.parametrize(("error", "status"), [(CLOSED, 409), (DOWN, 503)])
async def test_api_answers_for_a_closed_or_unreachable_workflow(
    api: httpx.AsyncClient, db: Session, error: RPCError, status: int
) -> None:
    row = payment(db, channel="amanpay_paydirect", status="awaiting_payer")
    fake = FakeTemporal(view("awaiting_payer", "amanpay_paydirect"), fail=error)
    api.app.state.temporal = fake  # type: ignore[attr-defined]
    base = f"/api/v1/payments/{row.id}"
    for response in (
        await api.post(f"{base}/cancel"),
        await api.post(f"{base}/sms-code", json={"code": "123456"}),
        await api.post(f"{base}/sms-code/resend"),
    ):
        assert response.status_code == status, (response.request.url, response.text)
        assert response.json()["detail"]


def flash_of(response: httpx.Response) -> list[str]:
    """The portal's one-shot message, as the signed cookie carries it: [kind, message]."""
    raw = response.cookies["pn_flash"].strip('"').rsplit(".", 1)[0]
    decoded: list[str] = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    return decoded


@pytest.mark.parametrize(
    ("state", "kind", "words"),
    [
        (view("succeeded"), "warning", "accepté"),
        (view("expired"), "warning", "terminée (Expiré)"),
        (view("awaiting_payer"), "info", "Demande d'annulation envoyée"),
    ],
)
async def test_the_portal_cancel_says_when_the_attempt_is_over(
    db: Session, state: PaymentView, kind: str, words: str
) -> None:
    row = payment(db, status="started")
    app = create_app()
    fake = FakeTemporal(state)
    app.state.temporal = fake
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as portal:
        page = await portal.get("/connexion")
        token = TOKEN.search(page.text)
        assert token
        form = {"username": "sataa", "password": "Portnet2026!", "csrf_token": token.group(1)}
        assert (await portal.post("/connexion", data=form)).status_code == 303
        token = TOKEN.search((await portal.get("/factures")).text)
        assert token
        answer = await portal.post(f"/paiements/{row.id}/annuler", data={"csrf_token": token.group(1)})
    assert answer.status_code == 303 and answer.headers["location"] == f"/paiements/{row.id}"
    flash = flash_of(answer)
    assert flash[0] == kind and words in flash[1], flash
    assert fake.handle.signals == ([] if kind == "warning" else ["Annulé par sataa"])


class DownTemporal(FakeTemporal):
    """Temporal refusing connections when the start is sent."""

    async def execute_update_with_start_workflow(self, *args: Any, **kwargs: Any) -> Any:
        raise DOWN


async def test_a_start_while_temporal_is_down_is_503_with_retry_after(
    api: httpx.AsyncClient, db: Session, make_invoice: Any
) -> None:
    invoice = make_invoice(customs_code="290240")
    api.app.state.temporal = DownTemporal()  # type: ignore[attr-defined]
    response = await api.post(
        "/api/v1/payments",
        json={"invoice_ids": [invoice.id], "channel": "cmi_card"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json()["detail"] == "Service de paiement momentanément indisponible, réessayez."
