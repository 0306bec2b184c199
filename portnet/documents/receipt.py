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

from portnet import i18n, receipt_codes
from portnet.documents.layout import BLACK, MUTED, OK_GREEN, WHITE, PortnetPDF, drawable_language
from portnet.documents.parties import ClientInfo, client_rows, require_decimal
from portnet.documents.text import FONT, currency_label, mask_card_number, or_dash
from portnet.i18n import gettext as _
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
    language: str = "fr"  # the payer's: fr, ar (right to left) or en
    # Where anyone checks this receipt (the QR code's URL), the short code, and the page to type it.
    verification_url: str | None = None
    verification_code: str | None = None
    verification_page: str | None = None

    def __post_init__(self) -> None:
        require_decimal("ReceiptDocument", "total_paid", self.total_paid)


def render_receipt_pdf(doc: ReceiptDocument) -> bytes:
    """The proof of payment we issue; refuses to print a total its lines do not add up to."""
    with i18n.use_locale(drawable_language(doc.language)):
        return _render_receipt_pdf(doc)


def format_money(value: Decimal, currency: str) -> str:
    return i18n.format_amount(value, currency)


def _render_receipt_pdf(doc: ReceiptDocument) -> bytes:
    lines_total = total(item.amount_ttc for item in doc.invoices)
    if lines_total != to_money(doc.total_paid):
        raise ValueError(
            f"receipt {doc.receipt_number}: total_paid {doc.total_paid} != sum of invoices {lines_total}"
        )

    channel = _(doc.channel_label)
    pdf = PortnetPDF(
        doc_title=_("Reçu de paiement"),
        doc_ref=doc.receipt_number,
        created=doc.paid_at,
        subject=_("Reçu de paiement %(receipt)s - paiement %(payment)s - %(client)s")
        % {"receipt": doc.receipt_number, "payment": doc.payment_id, "client": doc.client.name},
        accent=OK_GREEN,
    )
    pdf.add_page()

    # Confirmation banner: the one thing the reader must see first.
    top = pdf.get_y()
    pdf.set_fill_color(*OK_GREEN)
    pdf.set_text_color(*WHITE)
    pdf.set_font(FONT, "B", 12)
    banner = [
        (f"   {_('Paiement confirmé')}   ", pdf.start),
        (f"   {format_money(doc.total_paid, doc.currency)}   ", pdf.end),
    ]
    for text, align in pdf.in_reading_order(banner):
        pdf.cell(pdf.epw / 2, 11, text, fill=True, align=align)
    pdf.set_xy(pdf.l_margin, top + 13)
    pdf.set_text_color(*BLACK)
    pdf.set_fill_color(*WHITE)

    pdf.section_title(_("Détails du paiement"))
    pairs = [
        (_("N° de reçu"), doc.receipt_number),
        (_("Date du paiement"), i18n.format_day(doc.paid_at)),
        (_("Identifiant du paiement (N° de commande)"), doc.payment_id),
        (_("Heure du paiement"), doc.paid_at.strftime("%H:%M:%S")),
        (_("Canal de paiement"), channel),
        (_("Code d'autorisation"), or_dash(doc.authorization_code)),
        (_("Transaction partenaire"), or_dash(doc.partner_transaction_id)),
    ]
    if doc.card_number and doc.card_number.strip():
        pairs.append((_("Carte bancaire"), mask_card_number(doc.card_number)))
    pairs.append((_("Devise"), _(currency_label(doc.currency))))
    pdf.key_value_grid(pairs)

    pdf.ln(1)
    boxes = [
        (_("Payeur"), or_dash(doc.payer_name), [(_("E-mail"), or_dash(doc.payer_email))]),
        (_("Client"), doc.client.name, [(_(label), value) for label, value in client_rows(doc.client)]),
    ]
    first, second = pdf.in_reading_order(boxes)
    pdf.party_boxes(first, second)

    pdf.section_title(_("Factures réglées"))
    pdf.data_table(
        headings=(_("N° facture"), _("Émetteur"), _("Montant TTC")),
        rows=[
            (item.number, item.emitter_name, format_money(item.amount_ttc, doc.currency))
            for item in doc.invoices
        ],
        col_widths=(28, 44, 28),
        text_align=("LEFT", "LEFT", "RIGHT"),
        empty_text=_("Aucune facture"),
        footer_row=(_("Total payé"), format_money(doc.total_paid, doc.currency)),
    )

    if doc.verification_url:
        _verification_box(pdf, doc)

    pdf.ln(2)
    pdf.paragraph(
        _(
            "Le paiement n° %(payment)s a été confirmé le %(day)s à %(time)s via %(channel)s. "
            "Conservez ce reçu : il vous sera demandé pour toute réclamation relative à ce paiement."
        )
        % {
            "payment": doc.payment_id,
            "day": i18n.format_day(doc.paid_at),
            "time": doc.paid_at.strftime("%H:%M"),
            "channel": channel,
        },
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
        for row in receipt_codes.qr_code(url).matrix_iter(border=QR_BORDER)
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
    pdf.section_title(_("Vérification du reçu"))
    top = pdf.get_y()
    width = pdf.epw - QR_SIZE - 5
    # The QR code where a reader starts: on the left, on the right in Arabic.
    qr_x, text_x = (
        (pdf.l_margin + width + 5, pdf.l_margin) if pdf.rtl else (pdf.l_margin, pdf.l_margin + QR_SIZE + 5)
    )
    draw_qr(pdf, doc.verification_url, qr_x, top, QR_SIZE)
    pdf.set_xy(text_x, top + 2)
    pdf.set_font(FONT, "", 9)
    pdf.text_block(
        width,
        4.8,
        _(
            "Ce reçu peut être vérifié par quiconque, sans compte PortNet : scannez le QR code, ou saisissez "
            "le code ci-dessous sur %(page)s. La page indique le montant, les factures, les émetteurs et "
            "l'état du paiement à ce jour, sans donnée personnelle."
        )
        % {"page": doc.verification_page or doc.verification_url},
    )
    if doc.verification_code:
        pdf.set_xy(text_x, pdf.get_y() + 1.5)
        pdf.set_font(FONT, "", 8)
        pdf.set_text_color(*MUTED)
        pdf.cell(width, 4.5, _("Code de vérification"), align=pdf.start, new_x="LEFT", new_y="NEXT")
        pdf.set_text_color(*BLACK)
        pdf.set_font("courier", "B", 11)
        pdf.cell(width, 6, doc.verification_code, align=pdf.start, new_x="LEFT", new_y="NEXT")
    pdf.set_xy(pdf.l_margin, max(pdf.get_y(), top + QR_SIZE) + 2)
