"""The PDFs are checked through their extracted text: what a reader (or a search) would see."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pypdf
import pytest

from bench.documents import CLIENT, INVOICE
from portnet.documents import (
    InvoiceDocument,
    PaidInvoiceItem,
    PrestationItem,
    ReceiptDocument,
    mask_card_number,
    pdf_safe_text,
    render_invoice_pdf,
    render_receipt_pdf,
)

FULL_PAN = "4000000000000002"


@pytest.fixture
def invoice() -> InvoiceDocument:
    """The guide's invoice 00069321 to SATAA, as the documents benchmark lays it out."""
    return INVOICE


@pytest.fixture
def receipt() -> ReceiptDocument:
    return ReceiptDocument(
        receipt_number="R-2017-000123",
        payment_id="PN20171105143210A7F3",
        channel_label="CMI carte bancaire",
        paid_at=datetime(2017, 11, 5, 14, 32, 10),
        client=CLIENT,
        invoices=[
            PaidInvoiceItem(number="00069321", emitter_name="PORTNET", amount_ttc=Decimal("3600.00")),
            PaidInvoiceItem(number="2017/45871", emitter_name="MARSA MAROC", amount_ttc=Decimal("12480.50")),
        ],
        total_paid=Decimal("16080.50"),
        partner_transaction_id="17309141532876",
        authorization_code="P47291",
        card_number="400000******0002",
        payer_name="Karim El Amrani",
        payer_email="k.elamrani@sataa.ma",
    )


def pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def flat(text: str) -> str:
    """Extraction may break a cell over lines; tests look for phrases, not for the layout."""
    return re.sub(r"\s+", " ", text)


def test_invoice_shows_the_key_values(invoice: InvoiceDocument) -> None:
    data = render_invoice_pdf(invoice)
    assert data.startswith(b"%PDF-")
    text = flat(pdf_text(data))
    for expected in (
        "PORTNET",
        "Guichet Unique National des Procédures du Commerce Extérieur",
        "Facture",
        "00069321",
        "SATAA IMPORT EXPORT SARL AU",
        "Code douanier",
        "290240",
        "001525987000045",
        "Aïn Sebaâ",
        "Casablanca n° 294435",
        "40189256",
        "Principale",
        "31/10/2017",
        "30/12/2017",
        "Échéance",
        "Référence",
        "Type d'opération",
        "Non réglée",
        "Abonnement Portnet",
        "Abonnement PORTNET",
        "Abonnement annuel IMP",
        "31/10/2018",
        "Montant HT",
        "3 000,00 MAD",
        "600,00 MAD",
        "Montant TTC",
        "3 600,00 MAD",
        "Dirham (MAD)",
        "profil importateur",
        "PORTNET S.A.",
        "05 20 47 31 00",
        "http://reclamation.portnet.ma",
    ):
        assert expected in text, expected


def test_invoice_shows_its_principal_for_a_credit_note(invoice: InvoiceDocument) -> None:
    avoir = replace(
        invoice,
        number="A0001",
        type_label="Avoir",
        principal_number="00069321",
        amount_ht=Decimal("-100.00"),
        amount_tva=Decimal("-20.00"),
        amount_ttc=Decimal("-120.00"),
        due_date=None,
    )
    text = flat(pdf_text(render_invoice_pdf(avoir)))
    assert "Avoir" in text
    assert "Facture principale 00069321" in text
    assert "-120,00 MAD" in text


def test_invoice_without_lines_or_description_still_renders(invoice: InvoiceDocument) -> None:
    bare = replace(invoice, lines=(), description=None, due_date=None)
    text = flat(pdf_text(render_invoice_pdf(bare)))
    assert "Aucune prestation" in text
    assert "DESCRIPTION" not in text


def test_long_invoice_flows_over_pages_with_footer_on_each(invoice: InvoiceDocument) -> None:
    many = replace(
        invoice,
        lines=[PrestationItem(f"Prestation {i}", "Import", f"REF-{i:05d}", None) for i in range(80)],
    )
    reader = pypdf.PdfReader(io.BytesIO(render_invoice_pdf(many)))
    assert len(reader.pages) > 1
    for n, page in enumerate(reader.pages, start=1):
        page_text = page.extract_text()
        assert "PORTNET S.A." in page_text
        assert f"Page {n}/{len(reader.pages)}" in page_text
    text = flat(pdf_text(render_invoice_pdf(many)))
    assert "REF-00000" in text and "REF-00079" in text
    assert "3 600,00 MAD" in text


def test_metadata_comes_from_the_document_and_output_is_reproducible(invoice: InvoiceDocument) -> None:
    first = render_invoice_pdf(invoice)
    assert first == render_invoice_pdf(invoice)
    meta = pypdf.PdfReader(io.BytesIO(first)).metadata
    assert meta is not None
    assert meta.title == "Facture 00069321"
    assert meta.author == "PORTNET S.A."
    assert meta.creation_date == datetime(2017, 10, 31, tzinfo=UTC)


def test_receipt_shows_the_key_values(receipt: ReceiptDocument) -> None:
    data = render_receipt_pdf(receipt)
    assert data.startswith(b"%PDF-")
    text = flat(pdf_text(data))
    for expected in (
        "Reçu de paiement",
        "R-2017-000123",
        "PN20171105143210A7F3",
        "CMI carte bancaire",
        "17309141532876",
        "P47291",
        "400000******0002",
        "05/11/2017",
        "14:32:10",
        "Karim El Amrani",
        "k.elamrani@sataa.ma",
        "SATAA IMPORT EXPORT SARL AU",
        "290240",
        "00069321",
        "2017/45871",
        "MARSA MAROC",
        "3 600,00 MAD",
        "12 480,50 MAD",
        "Total payé",
        "16 080,50 MAD",
        "Paiement confirmé",
        "FACTURES RÉGLÉES",
        "http://reclamation.portnet.ma",
    ):
        assert expected in text, expected
    meta = pypdf.PdfReader(io.BytesIO(data)).metadata
    assert meta is not None and meta.title == "Reçu de paiement R-2017-000123"


def test_receipt_never_prints_a_full_card_number(receipt: ReceiptDocument) -> None:
    for given in (FULL_PAN, "4000 0000 0000 0002", "4000-0000-0000-0002"):
        data = render_receipt_pdf(replace(receipt, card_number=given))
        text = pdf_text(data)
        assert "400000******0002" in text
        digits_only = re.sub(r"[\s\-]", "", text)
        assert FULL_PAN not in digits_only
        meta = pypdf.PdfReader(io.BytesIO(data)).metadata
        assert meta is not None
        assert all(FULL_PAN not in str(value) for value in meta.values())


def test_receipt_without_card_has_no_card_row(receipt: ReceiptDocument) -> None:
    transfer = replace(receipt, channel_label="Virement bancaire", card_number=None, authorization_code=None)
    text = flat(pdf_text(render_receipt_pdf(transfer)))
    assert "Carte bancaire" not in text
    assert "Virement bancaire" in text


def test_receipt_refuses_a_total_that_does_not_add_up(receipt: ReceiptDocument) -> None:
    with pytest.raises(ValueError, match="total_paid"):
        render_receipt_pdf(replace(receipt, total_paid=Decimal("3600.00")))


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("4000000000000002", "400000******0002"),
        ("4000 0000 0000 0002", "400000******0002"),
        ("400000******0002", "400000******0002"),
        ("4000 00XX XXXX 0002", "400000******0002"),
        ("5413330089010434123", "541333*********4123"),  # 19-digit PAN
        ("1234567890", "******7890"),
        ("1234", "****"),
        ("", "****"),
    ],
)
def test_mask_card_number(given: str, shown: str) -> None:
    assert mask_card_number(given) == shown


def test_text_outside_latin1_does_not_crash(invoice: InvoiceDocument, receipt: ReceiptDocument) -> None:
    exotic = "Société «Ünïcode» 株式会社 شركة ş ğ İ 🚢 \u202f–\u00a0œ € “x” e\u0301 \x07\ttab ≥ 1"
    odd_client = replace(CLIENT, name=exotic, address=exotic)
    inv = replace(
        invoice,
        client=odd_client,
        description=exotic,
        lines=[PrestationItem(exotic, exotic, exotic, None)],
    )
    text = flat(pdf_text(render_invoice_pdf(inv)))
    assert "Société «Ünïcode»" in text
    assert "œ €" in text
    assert "s g I" in text
    rec = replace(receipt, client=odd_client, payer_name=exotic, channel_label=exotic)
    assert "Société «Ünïcode»" in flat(pdf_text(render_receipt_pdf(rec)))


def test_pdf_safe_text() -> None:
    assert pdf_safe_text("3\u202f600,00\u00a0MAD") == "3 600,00 MAD"
    assert pdf_safe_text("Échéance e\u0301") == "Échéance é"
    assert pdf_safe_text("ş🚢\x07\tb\nc") == "s? b\nc"
    assert pdf_safe_text("x\u200by") == "xy"


def test_amounts_must_be_decimal(invoice: InvoiceDocument) -> None:
    with pytest.raises(TypeError):
        replace(invoice, amount_ttc=3600.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PaidInvoiceItem(number="1", emitter_name="PORTNET", amount_ttc=3600.0)  # type: ignore[arg-type]


def test_credit_note_has_its_own_heading(invoice: InvoiceDocument) -> None:
    data = render_invoice_pdf(replace(invoice, type_label="Avoir", principal_number="00069320"))
    assert "Facture d'avoir" in pdf_text(data)


def test_huge_party_values_stay_on_one_page(invoice: InvoiceDocument) -> None:
    huge = replace(invoice, client=replace(CLIENT, name="N" * 5000, address="rue " * 3000), lines=())
    reader = pypdf.PdfReader(io.BytesIO(render_invoice_pdf(huge)))
    assert len(reader.pages) == 1
