"""Receipts verifiable at the gate: the QR code a receipt carries opens the public page that says what it
proves, and nothing personal; forged, altered and unknown codes are refused alike; the page is rate
limited; a payment that no longer stands says so."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

import httpx
import pypdfium2
import pytest
import pytest_asyncio
import zxingcpp
from PIL import Image
from pypdf import PdfReader
from sqlmodel import Session, select

from activities import ledger
from activities.mail import compose_payment_confirmation
from activities.types import PayerInfo, ReserveInput, SettleInput
from portnet import migrate, receipt_codes
from portnet.localtime import to_local
from portnet.models import Document, Emitter, Invoice, Payment
from portnet.money import format_fr
from portnet.seed.history import demo_payment_id
from portnet.settings import get_settings
from portnet.statuses import InvoiceStatus
from web.app import create_app

PAYER_NAME = "Karima Bennani El Idrissi"
PAYER_EMAIL = "karima.bennani@sataa.ma"
COMPANY = "SATAA IMPORT EXPORT SARL AU"
CARD = "400000******0010"


@dataclass
class Settled:
    payment_id: str
    invoices: list[Invoice]
    transaction_id: str


@pytest.fixture
def settled(make_invoice: Callable[..., Invoice], db: Session) -> Settled:
    """A card payment of two invoices of two emitters, settled by the ledger as a live one is."""
    invoices = [
        make_invoice(ht="1000.00", tva="200.00"),
        make_invoice(emitter_code="611MARS001", ht="4404.00"),
    ]
    payment_id = "PN" + uuid.uuid4().hex[:12].upper()
    reservation = ledger.reserve_invoices(
        ReserveInput(
            payment_id=payment_id,
            workflow_id=f"payment-{payment_id}",
            channel="cmi_card",
            company_id=invoices[0].company_id,
            user_id=None,
            user_name="sataa",
            invoice_ids=[inv.id or 0 for inv in invoices],
            payer_email=PAYER_EMAIL,
        )
    )
    assert reservation.ok
    transaction = "T-" + uuid.uuid4().hex[:10].upper()
    ledger.settle_payment(
        SettleInput(
            payment_id=payment_id,
            channel="cmi_card",
            user_name="sataa",
            transaction_id=transaction,
            auth_code="654321",
            masked_pan=CARD,
            paid_at="2026-11-30T23:30:05+00:00",  # already 1 December in Casablanca (UTC+1)
            payer=PayerInfo(name=PAYER_NAME, email=PAYER_EMAIL),
        )
    )
    return Settled(payment_id, invoices, transaction)


@pytest_asyncio.fixture
async def portal(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as client:
        yield client


def receipt_pdf(db: Session, payment_id: str) -> bytes:
    doc = db.exec(select(Document).where(Document.payment_id == payment_id, Document.kind == "receipt")).one()
    assert doc.content is not None
    return doc.content


def scan(image: Image.Image) -> list[str]:
    """What a QR reader finds in the image."""
    return [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]


def scan_pdf(data: bytes) -> list[str]:
    """Each page rendered at 200 dpi, as a phone's camera would see the printed receipt, then scanned."""
    pdf = pypdfium2.PdfDocument(data)
    try:
        return [text for page in pdf for text in scan(page.render(scale=200 / 72).to_pil())]
    finally:
        pdf.close()


def expected_url(payment_id: str) -> str:
    settings = get_settings()
    code = receipt_codes.receipt_code(payment_id, settings.secret_key)
    return f"{settings.public_base_url}/verification/{receipt_codes.format_code(code)}"


def visible(html: str) -> str:
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


async def test_the_qr_code_in_the_receipt_opens_the_page_with_what_the_receipt_proves(
    settled: Settled, db: Session, portal: httpx.AsyncClient
) -> None:
    pdf = receipt_pdf(db, settled.payment_id)
    found = scan_pdf(pdf)
    assert found == [expected_url(settled.payment_id)]
    url = found[0]
    code = url.rsplit("/", 1)[1]
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){6}[0-9A-HJKMNP-TV-Z]{4}", code)
    printed = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert code in printed  # the short code, for typing, is the QR's

    page = await portal.get(urlsplit(url).path)
    assert page.status_code == 200
    text = visible(page.text)
    payment = db.get(Payment, settled.payment_id)
    assert payment is not None and payment.paid_at is not None
    assert f"REC-{settled.payment_id}" in text
    assert format_fr(payment.amount) in text and format_fr(payment.amount) == "5\u202f624,00 MAD"
    local = to_local(payment.paid_at)
    assert local.strftime("%d/%m/%Y") == "01/12/2026" and "01/12/2026" in text and "00:30:05" in text
    for invoice in settled.invoices:
        emitter = db.get(Emitter, invoice.emitter_id)
        assert emitter is not None
        assert invoice.number in text and emitter.name in text
    assert "Réussi" in text and "Facture payée" in text and "Paiement confirmé" in text
    # Nothing personal, nothing that helps to impersonate the payer.
    for secret in (
        PAYER_NAME,
        PAYER_EMAIL,
        "sataa",
        COMPANY,
        "290240",
        CARD,
        settled.transaction_id,
        "654321",
    ):
        assert secret.lower() not in page.text.lower(), secret
    # Nor the card's last four digits, in any masking ("****0010", "•••• 0010"); the same four digits
    # inside a random id or code printed on the page are not the card's.
    assert not re.search(r"(?<![\w-])0010(?![\w-])", page.text), "the card's last four digits"
    assert page.headers["cache-control"] == "no-store" and "noindex" in page.headers["x-robots-tag"]
    assert "set-cookie" not in page.headers  # no session, no tracking: a public page

    # Typed by hand, in lower case, without dashes, with O for 0 and I for 1: the same receipt.
    typed = code.replace("-", " ").lower().replace("0", "o").replace("1", "i")
    sent = await portal.get("/verification", params={"code": typed})
    assert sent.status_code == 303 and sent.headers["location"] == urlsplit(url).path
    assert (await portal.get(sent.headers["location"])).status_code == 200


async def test_forged_altered_unknown_and_malformed_codes_get_the_same_refusal(
    settled: Settled, portal: httpx.AsyncClient
) -> None:
    settings = get_settings()
    real = receipt_codes.receipt_code(settled.payment_id, settings.secret_key)
    altered = ("1" if real[5] != "1" else "2").join((real[:5], real[6:]))
    forged = receipt_codes.receipt_code(settled.payment_id, "a key that is not ours")
    unknown = receipt_codes.receipt_code("PN" + uuid.uuid4().hex[:12].upper(), settings.secret_key)
    refusals = []
    for code in (
        receipt_codes.format_code(altered),
        receipt_codes.format_code(forged),
        receipt_codes.format_code(unknown),
        real[:-1],  # one character short
        real + "0",
        "REC-" + settled.payment_id,
        settled.payment_id,
        "x" * 500,
        "a/b/../c",
        "%C3%A9t%C3%A9 %F0%9F%9A%A2",
    ):
        answer = await portal.get(f"/verification/{code}")
        assert answer.status_code == 404, code
        refusals.append(answer.text)
    assert len(set(refusals)) == 1  # byte for byte: nothing tells a forged code from an unknown one
    assert "Reçu inconnu" in refusals[0] and real not in refusals[0]
    assert settled.payment_id not in refusals[0]
    assert (await portal.get(f"/verification/{receipt_codes.format_code(real)}")).status_code == 200


async def test_lookups_are_rate_limited_per_client_address(settled: Settled, database_url: str) -> None:
    settings = get_settings().model_copy(
        update={"verification_lookups_per_window": 3, "verification_window_seconds": 60}
    )
    app = create_app(settings)
    now = [ledger.utcnow()]
    app.state.clock = lambda: now[0]
    real = urlsplit(expected_url(settled.payment_id)).path
    unknown = "/verification/" + receipt_codes.format_code("0" * receipt_codes.CODE_LENGTH)

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://portal")

    async with client("198.51.100.7") as scanner, client("198.51.100.8") as neighbour:
        assert [(await scanner.get(p)).status_code for p in (real, unknown, real)] == [200, 404, 200]
        refused = await scanner.get(real)  # the right code too: refused before any look-up
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
        assert "Trop de vérifications" in refused.text and "REC-" not in refused.text
        assert (await scanner.get(unknown)).status_code == 429
        assert (await neighbour.get(real)).status_code == 200  # another address has its own count
        now[0] += timedelta(seconds=61)
        assert (await scanner.get(real)).status_code == 200  # a new window


async def test_a_payment_that_no_longer_stands_shows_so(
    settled: Settled, db: Session, portal: httpx.AsyncClient
) -> None:
    path = urlsplit(expected_url(settled.payment_id)).path
    invoice = db.get(Invoice, settled.invoices[1].id)
    assert invoice is not None
    invoice.status = InvoiceStatus.CANCELLED.value
    db.add(invoice)
    db.commit()
    text = visible((await portal.get(path)).text)
    assert f"Facture(s) annulée(s) depuis le paiement : {invoice.number}" in text and "Annulée" in text

    payment = db.get(Payment, settled.payment_id)
    assert payment is not None
    payment.status = "cancelled"
    db.add(payment)
    db.commit()
    page = await portal.get(path)
    assert page.status_code == 200  # still a receipt we issued, and it says what became of it
    text = visible(page.text)
    assert "Ce reçu n'atteste plus un paiement : paiement « Annulé »" in text
    assert "Reçu émis par PORTNET : le paiement ci-dessous est enregistré et confirmé" not in text


def test_the_confirmation_email_carries_the_code_and_its_qr_code(settled: Settled) -> None:
    message = compose_payment_confirmation(settled.payment_id, PAYER_EMAIL)
    url = expected_url(settled.payment_id)
    text = message.get_body(("plain",))
    assert text is not None and url in text.get_content()
    assert f"Code de vérification : {url.rsplit('/', 1)[1]}" in text.get_content()
    html = message.get_body(("html",))
    assert html is not None and url in html.get_content()
    images = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 1
    cid = str(images[0]["Content-ID"]).strip("<>")
    assert f'src="cid:{cid}"' in html.get_content()
    assert isinstance(images[0], EmailMessage)
    assert scan(Image.open(io.BytesIO(images[0].get_content()))) == [url]
    pdfs = [part for part in message.walk() if part.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1 and scan_pdf(pdfs[0].get_content()) == [url]


async def test_seeded_receipts_verify_too(db: Session, portal: httpx.AsyncClient) -> None:
    seeded = db.exec(select(Payment).where(Payment.workflow_id.startswith("demo-"))).all()  # type: ignore[attr-defined]
    assert seeded and all(p.receipt_code_hash for p in seeded)
    payment = seeded[0]
    links = db.exec(select(Invoice).where(Invoice.number == payment.invoice_numbers)).all()
    assert any(demo_payment_id(inv.id or 0) == payment.id for inv in links)
    page = await portal.get(urlsplit(expected_url(payment.id)).path)
    assert page.status_code == 200 and payment.invoice_numbers in page.text


def test_codes_are_long_distinct_and_forgiving_to_type() -> None:
    code = receipt_codes.receipt_code("PN0123456789AB", "k" * 32)
    assert len(code) == 28 and receipt_codes.CODE_BITS >= 128
    assert code != receipt_codes.receipt_code("PN0123456789AC", "k" * 32)
    assert code != receipt_codes.receipt_code("PN0123456789AB", "j" * 32)
    grouped = receipt_codes.format_code(code)
    assert grouped.count("-") == 6
    assert receipt_codes.normalize(f"  {grouped.lower()} ") == code
    assert receipt_codes.normalize(code[:-1]) is None and receipt_codes.normalize(code[:-1] + "U") is None
    assert receipt_codes.lookup_hash(grouped) == receipt_codes.code_hash(code)
    assert receipt_codes.lookup_hash("nonsense") != receipt_codes.code_hash("nonsense")


async def test_receipts_settled_before_codes_existed_get_theirs_after_migrating(
    settled: Settled, db: Session, portal: httpx.AsyncClient, database_url: str
) -> None:
    payment = db.get(Payment, settled.payment_id)
    assert payment is not None and payment.receipt_code_hash is not None
    issued = payment.receipt_code_hash
    payment.receipt_code_hash = None  # as a payment settled before this release
    db.add(payment)
    db.commit()
    path = urlsplit(expected_url(settled.payment_id)).path
    assert (await portal.get(path)).status_code == 404
    assert migrate.issue_missing_receipt_codes(database_url) >= 1
    assert migrate.issue_missing_receipt_codes(database_url) == 0  # once
    db.expire_all()
    assert db.get(Payment, settled.payment_id).receipt_code_hash == issued  # type: ignore[union-attr]
    assert (await portal.get(path)).status_code == 200
