"""Long-polling a payment's status: an answer at once when the status moved, on the change, or after
``wait`` with the unchanged status; one check shared by every waiter; bounded and cancel-safe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session

from portnet.models import Invoice, Payment
from tests.support.partners import new_attempt
from web import attempts, status_watch
from web.app import create_app
from web.attempts import forget_view
from workflows.types import PaymentView


class Workflows:
    """Stands for Temporal: the attempt's workflow answers its state query with ``status``."""

    def __init__(self, status: str = "awaiting_payer") -> None:
        self.status = status
        self.amount = "120.00"
        self.queries = 0

    async def get(self) -> Workflows:
        return self

    def get_workflow_handle(self, workflow_id: str) -> Any:
        fake = self

        class Handle:
            async def query(self, *_: Any) -> PaymentView:
                fake.queries += 1
                return PaymentView(
                    id=workflow_id.removeprefix("payment-"),
                    workflow_id=workflow_id,
                    status=fake.status,
                    channel="cmi_card",
                    amount=fake.amount,
                    invoice_ids=[1],
                )

        return Handle()


@pytest.fixture(autouse=True)
def only_asked_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workflow is asked only when a test makes it (a read, a wake): counts are exact."""
    monkeypatch.setattr(attempts, "POLL_SECONDS", 3600.0)
    monkeypatch.setattr(status_watch, "QUERY_SECONDS", 3600.0)


@pytest.fixture
def workflows() -> Workflows:
    return Workflows()


@pytest_asyncio.fixture
async def api(database_url: str, workflows: Workflows) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    app.state.temporal = workflows
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal", timeout=60) as client:
        response = await client.post(
            "/api/v1/session", json={"username": "sataa", "password": "Portnet2026!"}
        )
        assert response.status_code == 200, response.text
        client.app = app  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def payment_id(db: Session, make_invoice: Callable[..., Invoice]) -> str:
    return new_attempt(db, make_invoice()).payment_id


async def waiters(payment_id: str, count: int) -> None:
    """Until ``count`` requests wait on the payment (they get there through thread-pool reads)."""
    await asyncio.wait_for(status_watch.WATCH.until_waiting(payment_id, count), 30)


def waiting(
    api: httpx.AsyncClient, payment_id: str, since: str = "awaiting_payer"
) -> asyncio.Task[httpx.Response]:
    return asyncio.ensure_future(
        api.get(f"/api/v1/payments/{payment_id}", params={"wait": 25, "since": since})
    )


async def test_a_moved_status_is_answered_at_once(api: httpx.AsyncClient, payment_id: str) -> None:
    response = await api.get(f"/api/v1/payments/{payment_id}", params={"wait": 25, "since": "started"})
    assert response.status_code == 200 and response.json()["status"] == "awaiting_payer"
    assert status_watch.WATCH.waiting() == 0  # nobody waited


async def test_waiters_wake_on_the_change_this_process_made(
    api: httpx.AsyncClient, payment_id: str, workflows: Workflows
) -> None:
    pending = [waiting(api, payment_id)]
    await waiters(payment_id, 1)
    pending += [waiting(api, payment_id) for _ in range(4)]
    await waiters(payment_id, 5)
    assert not any(task.done() for task in pending)
    workflows.status = "awaiting_confirmation"  # e.g. CMI's callback, through its Update
    forget_view(payment_id)
    answers = await asyncio.gather(*pending)
    assert {(r.status_code, r.json()["status"]) for r in answers} == {(200, "awaiting_confirmation")}
    # One query for the first read, one for all five waiters after the change.
    assert workflows.queries == 2


async def test_later_waiters_start_from_the_watchers_view(
    api: httpx.AsyncClient, payment_id: str, workflows: Workflows, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not from the pollers' shared answer (none here): from what the first waiter's loop knows."""
    monkeypatch.setattr(attempts, "POLL_SECONDS", 0.0)
    first = waiting(api, payment_id)
    await waiters(payment_id, 1)
    later = [waiting(api, payment_id) for _ in range(3)]
    await waiters(payment_id, 4)
    assert workflows.queries == 1
    workflows.status = "cancelled"
    forget_view(payment_id)
    assert {(await task).json()["status"] for task in [first, *later]} == {"cancelled"}
    assert workflows.queries == 2
    assert status_watch.WATCH.waiting() == 0


async def test_a_newer_read_wakes_the_earlier_waiters(
    api: httpx.AsyncClient, payment_id: str, workflows: Workflows
) -> None:
    """A request that read the workflow after the loop did (its answer no longer shared) brings the news."""
    first = waiting(api, payment_id)
    await waiters(payment_id, 1)
    workflows.status = "awaiting_confirmation"  # through another replica: nobody here woken
    attempts._polled.pop(payment_id)  # the shared answer has aged
    params: dict[str, str | int] = {"wait": 25, "since": "awaiting_confirmation"}
    second = asyncio.ensure_future(api.get(f"/api/v1/payments/{payment_id}", params=params))
    assert (await first).json()["status"] == "awaiting_confirmation"
    await waiters(payment_id, 1)  # the second waits on from there
    assert not second.done()
    workflows.status = "succeeded"
    forget_view(payment_id)
    assert (await second).json()["status"] == "succeeded"
    assert workflows.queries == 3


async def test_a_final_status_in_the_ledger_ends_the_wait_without_a_query(
    api: httpx.AsyncClient, payment_id: str, workflows: Workflows, db: Session
) -> None:
    pending = waiting(api, payment_id)
    await waiters(payment_id, 1)
    payment = db.get(Payment, payment_id)
    assert payment is not None
    payment.status, payment.failure_reason = "expired", "Délai de paiement dépassé."
    db.add(payment)
    db.commit()  # as the workflow's release writes it
    answer = await pending
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["error"]) == ("expired", "Délai de paiement dépassé.")
    assert workflows.queries == 1  # the first read only: the ledger told the end
    again = await api.get(f"/api/v1/payments/{payment_id}", params={"wait": 25, "since": "expired"})
    assert again.json()["status"] == "expired"  # a final status never changes: no wait


async def test_an_attempt_still_starting_is_shown_with_its_reserved_amount(
    api: httpx.AsyncClient, payment_id: str, workflows: Workflows, db: Session
) -> None:
    """Its workflow shows 0.00 until it has read its reservation back; the ledger row holds the amount.
    Whether read afresh, shared with a later waiter, or the watch loop's view after the wait."""
    workflows.status, workflows.amount = "started", "0.00"
    payment = db.get(Payment, payment_id)
    assert payment is not None
    reserved = f"{payment.amount:.2f}"
    params: dict[str, str | int] = {"wait": 2, "since": "started"}
    first = asyncio.ensure_future(api.get(f"/api/v1/payments/{payment_id}", params=params))
    await waiters(payment_id, 1)
    forget_view(payment_id)  # the loop asks again: its own view is what later waiters start from
    later = asyncio.ensure_future(api.get(f"/api/v1/payments/{payment_id}", params=params))
    plain = await api.get(f"/api/v1/payments/{payment_id}")
    answers = [plain, await first, await later]
    assert [(r.json()["status"], r.json()["amount"]) for r in answers] == [("started", reserved)] * 3
    assert workflows.queries >= 2


async def test_an_unchanged_status_is_answered_after_the_wait(
    api: httpx.AsyncClient, payment_id: str, workflows: Workflows
) -> None:
    response = await api.get(f"/api/v1/payments/{payment_id}", params={"wait": 1})  # since: as it is now
    assert response.status_code == 200 and response.json()["status"] == "awaiting_payer"
    assert status_watch.WATCH.waiting() == 0
    # Slow by design: timed in its own series, not in the plain reads' latency.
    metrics = (await api.get("/metrics")).text
    assert (
        'portnet_http_request_seconds_count{method="GET",route="/api/v1/payments/{payment_id}?wait"'
        in metrics
    )


async def test_a_card_attempts_row_saying_started_asks_nothing_more(
    api: httpx.AsyncClient, payment_id: str, workflows: Workflows, db: Session
) -> None:
    """The ledger keeps ``started`` while the workflow awaits the payer: not a change to look into."""
    payment = db.get(Payment, payment_id)
    assert payment is not None
    payment.status = "started"
    db.add(payment)
    db.commit()
    response = await api.get(f"/api/v1/payments/{payment_id}", params={"wait": 2, "since": "awaiting_payer"})
    assert response.json()["status"] == "awaiting_payer" and workflows.queries == 1


@pytest.mark.parametrize(
    "params",
    [{"wait": 0}, {"wait": 31}, {"wait": "soon"}, {"wait": 5, "since": "paid"}, {"since": "awaiting_payer"}],
)
async def test_bad_parameters_are_a_clear_422(
    api: httpx.AsyncClient, payment_id: str, params: dict[str, Any]
) -> None:
    response = await api.get(f"/api/v1/payments/{payment_id}", params=params)
    assert response.status_code == 422 and response.json()["code"] == "invalid_input"
    detail = response.json()["detail"]
    assert detail.startswith("Données invalides — ") and ("wait" in detail or "since" in detail)
    assert status_watch.WATCH.waiting() == 0


async def test_another_companys_payment_is_a_404(
    api: httpx.AsyncClient, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    theirs = new_attempt(db, make_invoice(customs_code="93583")).payment_id
    response = await api.get(f"/api/v1/payments/{theirs}", params={"wait": 25, "since": "awaiting_payer"})
    assert response.status_code == 404 and status_watch.WATCH.waiting() == 0


@pytest.mark.parametrize("cap", ["MAX_WAITERS_PER_USER", "MAX_WAITERS"])
async def test_waiters_beyond_the_cap_are_told_to_come_back(
    api: httpx.AsyncClient, payment_id: str, workflows: Workflows, monkeypatch: pytest.MonkeyPatch, cap: str
) -> None:
    monkeypatch.setattr(status_watch, cap, 1)
    first = waiting(api, payment_id)
    await waiters(payment_id, 1)
    refused = await api.get(f"/api/v1/payments/{payment_id}", params={"wait": 25, "since": "awaiting_payer"})
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_waiters"
    assert refused.headers["retry-after"] == str(status_watch.RETRY_AFTER_SECONDS)
    assert (await api.get(f"/api/v1/payments/{payment_id}")).status_code == 200  # a plain read still is
    workflows.status = "cancelled"
    forget_view(payment_id)
    assert (await first).json()["status"] == "cancelled"
    assert status_watch.WATCH.waiting() == 0


async def test_a_client_that_goes_away_leaves_its_place(api: httpx.AsyncClient, payment_id: str) -> None:
    """The ASGI app called as a server would, the client disconnecting while it waits."""
    app = api.app  # type: ignore[attr-defined]
    cookies = "; ".join(f"{name}={value}" for name, value in api.cookies.items())
    gone = asyncio.Event()
    requested = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/api/v1/payments/{payment_id}",
        "raw_path": f"/api/v1/payments/{payment_id}".encode(),
        "root_path": "",
        "query_string": b"wait=25&since=awaiting_payer",
        "headers": [(b"host", b"portal"), (b"cookie", cookies.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("portal", 80),
    }
    call = asyncio.ensure_future(app(scope, receive, send))
    await waiters(payment_id, 1)
    gone.set()
    await asyncio.wait_for(call, 30)
    assert status_watch.WATCH.waiting() == 0
    assert sent[0]["status"] == 204
