"""The payment receipt PDF: the proof of payment we issue once a payment is settled.

A receipt given its verification URL and code carries them in a box of its own: the QR code (segno,
error correction M, drawn as vector squares: sharp when printed or scanned at any size) and the
short code with the page where it may be typed (portnet/receipt_codes.py, web/verification.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import segno

from portnet.documents.layout import BLACK, MUTED, OK_GREEN, WHITE, PortnetPDF
from portnet.documents.parties import ClientInfo, client_rows, require_decimal
from portnet.documents.text import FONT, currency_label, format_money, mask_card_number, or_dash
from portnet.money import to_money, total


@dataclass(frozen=True)
class PaidInvoiceItem:
    number: str
    emitter_name: str
    amount_ttc: Decimal

    def __post_init__(self) -> None:
        require_decimal("PaidInvoiceItem", "amount_ttc", self.amount_ttc)


@dataclass(frozen=True)
class ReceiptDocument:
    """``card_number`` may be masked or not: it is always re-masked before it reaches the page.

    ``paid_at`` is printed as given (wall-clock), so pass it aware, in Africa/Casablanca; a naive
    value is printed as is and stamped as UTC in the PDF metadata.
    """

    receipt_number: str
    payment_id: str
    channel_label: str
    paid_at: datetime
    client: ClientInfo
    invoices: Sequence[PaidInvoiceItem]
    total_paid: Decimal
    partner_transaction_id: str | None = None
    authorization_code: str | None = None
    card_number: str | None = None
    payer_name: str | None = None
    payer_email: str | None = None
    currency: str = "MAD"
    # Where anyone checks this receipt (the QR code's URL), the short code, and the page to type it.
    verification_url: str | None = None
    verification_code: str | None = None
    verification_page: str | None = None

    def __post_init__(self) -> None:
        require_decimal("ReceiptDocument", "total_paid", self.total_paid)


def render_receipt_pdf(doc: ReceiptDocument) -> bytes:
    """The proof of payment we issue; refuses to print a total its lines do not add up to."""
    lines_total = total(item.amount_ttc for item in doc.invoices)
    if lines_total != to_money(doc.total_paid):
        raise ValueError(
            f"receipt {doc.receipt_number}: total_paid {doc.total_paid} != sum of invoices {lines_total}"
        )

    pdf = PortnetPDF(
        doc_title="Reçu de paiement",
        doc_ref=doc.receipt_number,
        created=doc.paid_at,
        subject=f"Reçu de paiement {doc.receipt_number} - paiement {doc.payment_id} - {doc.client.name}",
        accent=OK_GREEN,
    )
    pdf.add_page()

    # Confirmation banner: the one thing the reader must see first.
    top = pdf.get_y()
    pdf.set_fill_color(*OK_GREEN)
    pdf.set_text_color(*WHITE)
    pdf.set_font(FONT, "B", 12)
    pdf.cell(pdf.epw / 2, 11, "   Paiement confirmé", fill=True)
    pdf.set_font(FONT, "B", 12)
    pdf.cell(pdf.epw / 2, 11, f"{format_money(doc.total_paid, doc.currency)}   ", fill=True, align="R")
    pdf.set_xy(pdf.l_margin, top + 13)
    pdf.set_text_color(*BLACK)
    pdf.set_fill_color(*WHITE)

    pdf.section_title("Détails du paiement")
    pairs = [
        ("N° de reçu", doc.receipt_number),
        ("Date du paiement", doc.paid_at.strftime("%d/%m/%Y")),
        ("Identifiant du paiement (N° de commande)", doc.payment_id),
        ("Heure du paiement", doc.paid_at.strftime("%H:%M:%S")),
        ("Canal de paiement", doc.channel_label),
        ("Code d'autorisation", or_dash(doc.authorization_code)),
        ("Transaction partenaire", or_dash(doc.partner_transaction_id)),
    ]
    if doc.card_number and doc.card_number.strip():
        pairs.append(("Carte bancaire", mask_card_number(doc.card_number)))
    pairs.append(("Devise", currency_label(doc.currency)))
    pdf.key_value_grid(pairs)

    pdf.ln(1)
    pdf.party_boxes(
        (
            "Payeur",
            or_dash(doc.payer_name),
            [("E-mail", or_dash(doc.payer_email))],
        ),
        ("Client", doc.client.name, client_rows(doc.client)),
    )

    pdf.section_title("Factures réglées")
    pdf.data_table(
        headings=("N° facture", "Émetteur", "Montant TTC"),
        rows=[
            (item.number, item.emitter_name, format_money(item.amount_ttc, doc.currency))
            for item in doc.invoices
        ],
        col_widths=(28, 44, 28),
        text_align=("LEFT", "LEFT", "RIGHT"),
        empty_text="Aucune facture",
        footer_row=("Total payé", format_money(doc.total_paid, doc.currency)),
    )

    if doc.verification_url:
        _verification_box(pdf, doc)

    pdf.ln(2)
    pdf.paragraph(
        f"Le paiement n° {doc.payment_id} a été confirmé le {doc.paid_at.strftime('%d/%m/%Y')} "
        f"à {doc.paid_at.strftime('%H:%M')} via {doc.channel_label}. "
        "Conservez ce reçu : il vous sera demandé pour toute réclamation relative à ce paiement.",
        size=8.5,
        color=MUTED,
    )

    return bytes(pdf.output())


QR_SIZE = 34.0  # mm, quiet zone included: well above what phone cameras read at arm's length
QR_BORDER = 4  # modules of quiet zone, as the QR standard asks


def qr_matrix(url: str) -> tuple[tuple[bool, ...], ...]:
    """The QR code's modules (dark = True), quiet zone included: what the receipt draws."""
    return tuple(
        tuple(bool(module) for module in row)
        for row in segno.make_qr(url, error="m", boost_error=False).matrix_iter(border=QR_BORDER)
    )


def draw_qr(pdf: PortnetPDF, url: str, x: float, y: float, size: float) -> None:
    """The QR code as black squares on white, one rectangle per run of dark modules in a row."""
    matrix = qr_matrix(url)
    module = size / len(matrix)
    pdf.set_fill_color(*WHITE)
    pdf.rect(x, y, size, size, style="F")
    pdf.set_fill_color(*BLACK)
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            pdf.rect(x + start * module, y + r * module, (c - start) * module, module, style="F")
    pdf.set_fill_color(*WHITE)


def _verification_box(pdf: PortnetPDF, doc: ReceiptDocument) -> None:
    assert doc.verification_url is not None
    if pdf.will_page_break(QR_SIZE + 14):
        pdf.add_page()
    pdf.section_title("Vérification du reçu")
    top = pdf.get_y()
    draw_qr(pdf, doc.verification_url, pdf.l_margin, top, QR_SIZE)
    text_x = pdf.l_margin + QR_SIZE + 5
    width = pdf.epw - QR_SIZE - 5
    pdf.set_xy(text_x, top + 2)
    pdf.set_font(FONT, "", 9)
    pdf.multi_cell(
        width,
        4.8,
        "Ce reçu peut être vérifié par quiconque, sans compte PortNet : scannez le QR code, ou saisissez "
        f"le code ci-dessous sur {doc.verification_page or doc.verification_url}. La page indique le "
        "montant, les factures, les émetteurs et l'état du paiement à ce jour, sans donnée personnelle.",
        align="L",
        new_x="LEFT",
        new_y="NEXT",
    )
    if doc.verification_code:
        pdf.set_xy(text_x, pdf.get_y() + 1.5)
        pdf.set_font(FONT, "", 8)
        pdf.set_text_color(*MUTED)
        pdf.cell(width, 4.5, "Code de vérification", new_x="LEFT", new_y="NEXT")
        pdf.set_text_color(*BLACK)
        pdf.set_font("courier", "B", 11)
        pdf.cell(width, 6, doc.verification_code, new_x="LEFT", new_y="NEXT")
    pdf.set_xy(pdf.l_margin, max(pdf.get_y(), top + QR_SIZE) + 2)
