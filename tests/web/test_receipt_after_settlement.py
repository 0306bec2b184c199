"""The receipt issued after the settlement (rule ``receipt-after-settlement``): the ledger says
"succeeded" first, ``issue_receipt`` stores the PDF just after; the status page and the receipt's
address say the receipt is coming in between, then offer it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError

from activities.ledger import settle_payment
from activities.receipts import issue_receipt
from portnet import receipt_codes
from portnet.db import get_engine
from portnet.models import Document, Invoice, Payment
from portnet.settings import get_settings
from tests.support.pages import NoTemporal, logged_in
from tests.support.settlements import reserved, settled_input
from web import receipt_wait
from web.app import create_app
from web.attempts import ledger_view
from workflows.types import PaymentView

NO_RECEIPT = "Aucun reçu n'est disponible pour ce paiement : contactez le service finance."
PENDING_NOTE = "Reçu en cours d'émission : il sera proposé ici et joint à l'e-mail de confirmation."


@pytest_asyncio.fixture
async def portal(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    app.state.temporal = NoTemporal()  # a finished attempt is read from the ledger alone
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as client:
        await logged_in(client, "sataa")
        yield client


def receipts_of(db: Session, payment_id: str) -> list[Document]:
    db.expire_all()
    return list(
        db.exec(select(Document).where(Document.payment_id == payment_id, Document.kind == "receipt"))
    )


def test_the_settlement_leaves_the_receipt_to_issue_receipt(
    db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    payment_id = reserved(make_invoice())
    inp = settled_input(payment_id)

    settlement = settle_payment(inp)

    payment = db.get(Payment, payment_id)
    assert payment is not None and payment.status == "succeeded" and payment.paid_at is not None
    assert settlement.applied and settlement.receipt_document_id == 0
    assert settlement.receipt_number == f"REC-{payment_id}"  # Fatourati quotes it before the PDF exists
    assert receipts_of(db, payment_id) == [] and payment.receipt_code_hash is None

    issued = issue_receipt(inp)
    again = issue_receipt(inp)  # a retry after a commit whose completion was lost

    stored = receipts_of(db, payment_id)
    assert [doc.id for doc in stored] == [issued.document_id] and again == issued
    assert issued.receipt_number == settlement.receipt_number
    assert stored[0].content is not None and stored[0].content.startswith(b"%PDF")
    db.refresh(payment)
    code = receipt_codes.receipt_code(payment_id, get_settings().secret_key)
    assert payment.receipt_code_hash == receipt_codes.code_hash(code)  # the printed code verifies
    assert stored[0].created_at == payment.paid_at


def test_no_receipt_before_a_settlement(db: Session, make_invoice: Callable[..., Invoice]) -> None:
    payment_id = reserved(make_invoice())

    with pytest.raises(ApplicationError) as refused:
        issue_receipt(settled_input(payment_id))

    assert refused.value.type == "BusinessRefusal" and refused.value.non_retryable
    assert receipts_of(db, payment_id) == []


async def test_between_the_settlement_and_the_receipt_the_payer_is_told_it_is_coming(
    portal: httpx.AsyncClient, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    payment_id = reserved(make_invoice())
    inp = settled_input(payment_id)
    settle_payment(inp)

    page = await portal.get(f"/paiements/{payment_id}")
    api = (await portal.get(f"/api/v1/payments/{payment_id}")).json()
    early = await portal.get(f"/api/v1/payments/{payment_id}/receipt")

    assert page.status_code == 200 and PENDING_NOTE in page.text
    assert "Télécharger le reçu" not in page.text
    # Paid just now: the page looks again (portal.js), or reloads itself without JavaScript.
    assert f'data-receipt-watch="/api/v1/payments/{payment_id}"' in page.text
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page.text
    assert api["status"] == "succeeded" and api["receipt_url"] is None
    assert early.status_code == 404 and early.headers["retry-after"] == "2"
    assert early.json()["detail"] == "Reçu en cours d'émission : réessayez dans quelques secondes."

    issue_receipt(inp)

    page = await portal.get(f"/paiements/{payment_id}")
    api = (await portal.get(f"/api/v1/payments/{payment_id}")).json()
    pdf = await portal.get(f"/api/v1/payments/{payment_id}/receipt")
    assert "Télécharger le reçu" in page.text and PENDING_NOTE not in page.text
    assert 'http-equiv="refresh"' not in page.text
    assert api["receipt_url"] == f"/api/v1/payments/{payment_id}/receipt"
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


async def test_a_receipt_still_missing_long_after_the_payment_stops_the_reloads(
    portal: httpx.AsyncClient, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    payment_id = reserved(make_invoice())
    inp = settled_input(payment_id)
    inp.paid_at = "2026-11-01T08:00:00+00:00"
    settle_payment(inp)

    page = await portal.get(f"/paiements/{payment_id}")
    late = await portal.get(f"/api/v1/payments/{payment_id}/receipt")

    assert NO_RECEIPT in page.text and PENDING_NOTE not in page.text
    assert 'http-equiv="refresh"' not in page.text and "data-receipt-watch" not in page.text
    assert late.status_code == 404 and "retry-after" not in late.headers
    assert late.json()["detail"] == NO_RECEIPT


async def test_an_attempt_not_settled_has_no_receipt_yet(
    portal: httpx.AsyncClient, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    payment_id = reserved(make_invoice())

    early = await portal.get(f"/api/v1/payments/{payment_id}/receipt")

    assert early.status_code == 404 and "retry-after" not in early.headers
    assert early.json()["detail"] == "Reçu disponible une fois le paiement réussi."


async def test_a_page_shown_just_after_the_settlement_waits_a_moment_for_the_receipt(
    portal: httpx.AsyncClient,
    db: Session,
    make_invoice: Callable[..., Invoice],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The status page reloads as soon as the ledger says "succeeded", often a few tens of
    milliseconds before the receipt is stored: it waits for it instead of saying it is coming."""
    monkeypatch.setattr(receipt_wait, "RECEIPT_WAIT", 30.0)  # however slow this machine lays a PDF out
    payment_id = reserved(make_invoice())
    inp = settled_input(payment_id)
    settle_payment(inp)

    page, issued = await asyncio.gather(
        portal.get(f"/paiements/{payment_id}"), asyncio.to_thread(issue_receipt, inp)
    )

    assert issued.document_id and "Télécharger le reçu" in page.text and PENDING_NOTE not in page.text


def test_overlapping_runs_store_one_receipt(db: Session, make_invoice: Callable[..., Invoice]) -> None:
    """A retry Temporal started after a timeout while the first run still waited for the write lock:
    both lay the PDF out, one stores it, the other finds it once it has the lock."""
    payment_id = reserved(make_invoice())
    inp = settled_input(payment_id)
    settle_payment(inp)

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(issue_receipt, [inp, inp])

    assert first == second and [doc.id for doc in receipts_of(db, payment_id)] == [first.document_id]


class SettledWhileAsked:
    """Temporal whose workflow settles the attempt between the page's read of the ledger and its
    query, then answers "succeeded": the moment a status page reloading itself may fall in."""

    def __init__(self, payment_id: str) -> None:
        self.inp = settled_input(payment_id)
        self.payment_id = payment_id

    async def get(self) -> SettledWhileAsked:
        return self

    def get_workflow_handle(self, workflow_id: str) -> SettledWhileAsked:
        return self

    async def query(self, _query: object) -> PaymentView:
        await asyncio.to_thread(settle_payment, self.inp)
        with Session(get_engine()) as session:
            row = session.get(Payment, self.payment_id)
            assert row is not None
            return ledger_view(row, session, False)


async def test_a_page_that_read_the_ledger_before_the_settlement_still_waits_for_the_receipt(
    database_url: str, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    payment_id = reserved(make_invoice())
    app = create_app()
    app.state.temporal = SettledWhileAsked(payment_id)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as client:
        await logged_in(client, "sataa")
        page = await client.get(f"/paiements/{payment_id}")

    assert page.status_code == 200 and "Réussi" in page.text
    assert PENDING_NOTE in page.text and NO_RECEIPT not in page.text
    assert f'data-receipt-watch="/api/v1/payments/{payment_id}"' in page.text
    paid_on = re.search(r"Date de paiement</dt>\s*<dd>([^<]*)</dd>", page.text)
    assert paid_on and re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d", paid_on.group(1).strip())
