"""Invoice and payment-receipt PDFs, rendered from plain inputs.

Rendering is pure: no database, no clock, no network. The caller maps its rows onto the dataclasses
below, so this module never drifts with the ORM and the same input always yields the same bytes (the
PDF creation date comes from the document itself, not from ``now()``).

Only fpdf2's built-in Helvetica is used: there is no font file to bundle or to find on a fresh CI
machine. Built-in fonts are single-byte, so every string is folded to Windows-1252 on its way in
(see :func:`pdf_safe_text`): French accents, ``œ``, ``€`` and typographic quotes survive, the narrow
no-break space that :func:`portnet.money.format_fr` puts between thousands becomes a plain space,
and anything else degrades to its closest unaccented form instead of crashing the rendering.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from fpdf import FPDF, FontFace
from fpdf.enums import TableBordersLayout

from portnet.money import format_fr, to_money, total

__all__ = [
    "ClientInfo",
    "EmitterInfo",
    "InvoiceDocument",
    "PaidInvoiceItem",
    "PrestationItem",
    "ReceiptDocument",
    "mask_card_number",
    "pdf_safe_text",
    "render_invoice_pdf",
    "render_receipt_pdf",
]

AUTHOR = "PORTNET S.A."
TAGLINE = "Guichet Unique National des Procédures du Commerce Extérieur"
HELPDESK_PHONE = "05 20 47 31 00"
RECLAMATION_URL = "http://reclamation.portnet.ma"
CURRENCY_LABELS = {"MAD": "Dirham (MAD)", "EUR": "Euro (EUR)", "USD": "Dollar US (USD)"}

# Palette: one brand colour, one tint for label cells, greys for the rest.
NAVY = (0, 51, 102)
TINT = (229, 236, 244)
RULE = (160, 170, 185)
MUTED = (95, 95, 95)
OK_GREEN = (25, 120, 60)
ORANGE = (242, 146, 0)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)

FONT = "helvetica"
PDF_ENCODING = "cp1252"
DASH = "—"  # shown for a missing value, so an empty cell reads as "none", not as a rendering bug


# --------------------------------------------------------------------------------------------- inputs


def _require_decimal(owner: str, name: str, value: object) -> None:
    # A float amount has already lost its centimes somewhere upstream; refuse it at the door.
    if not isinstance(value, Decimal):
        raise TypeError(f"{owner}.{name} must be a Decimal, got {type(value).__name__}")


@dataclass(frozen=True)
class EmitterInfo:
    name: str
    code: str
    rc_centre: str | None = None
    rc_number: str | None = None
    ifu: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class ClientInfo:
    name: str
    customs_code: str
    ice: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class PrestationItem:
    prestation: str
    operation_type: str
    reference: str | None = None
    end_date: datetime | None = None


@dataclass(frozen=True)
class InvoiceDocument:
    """Labels (type, status) arrive already translated so that rendering owns no vocabulary."""

    number: str
    type_label: str
    emitter: EmitterInfo
    client: ClientInfo
    invoice_date: datetime
    status_label: str
    amount_ht: Decimal
    amount_tva: Decimal
    amount_ttc: Decimal
    due_date: datetime | None = None
    principal_number: str | None = None
    lines: Sequence[PrestationItem] = ()
    currency: str = "MAD"
    description: str | None = None

    def __post_init__(self) -> None:
        for name in ("amount_ht", "amount_tva", "amount_ttc"):
            _require_decimal("InvoiceDocument", name, getattr(self, name))


@dataclass(frozen=True)
class PaidInvoiceItem:
    number: str
    emitter_name: str
    amount_ttc: Decimal

    def __post_init__(self) -> None:
        _require_decimal("PaidInvoiceItem", "amount_ttc", self.amount_ttc)


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

    def __post_init__(self) -> None:
        _require_decimal("ReceiptDocument", "total_paid", self.total_paid)


# ------------------------------------------------------------------------------------------- helpers

_SPACES = dict.fromkeys(
    map(ord, "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"),
    " ",
)
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
_CLOSE_ASCII = {
    ord("\u2010"): "-",
    ord("\u2011"): "-",
    ord("\u2012"): "-",
    ord("\u2015"): "-",
    ord("\u2212"): "-",
    ord("\u201b"): "'",
    ord("\u201f"): '"',
    ord("\u2032"): "'",
    ord("\u2033"): '"',
    ord("\u2192"): "->",
    ord("\u2190"): "<-",
    ord("\u2264"): "<=",
    ord("\u2265"): ">=",
    ord("\u2260"): "!=",
    ord("\u2713"): "v",
    ord("\u2714"): "v",
    ord("\t"): " ",
}
_TRANSLATION = {**_SPACES, **_INVISIBLE, **_CLOSE_ASCII}


def _encodable(ch: str) -> bool:
    try:
        ch.encode(PDF_ENCODING)
    except UnicodeEncodeError:
        return False
    return True


def pdf_safe_text(text: str) -> str:
    """Folds any text into what Helvetica can draw, so a stray character never aborts a document.

    Composed first (a decomposed ``é`` is still ``é``), then known look-alikes are mapped, then an
    unsupported letter loses its accent (``ş`` -> ``s``), and only what is left becomes ``?``.
    """
    text = unicodedata.normalize("NFC", text).translate(_TRANSLATION)
    out: list[str] = []
    for ch in text:
        if ch == "\n":
            out.append(ch)
        elif unicodedata.category(ch) == "Cc":
            continue
        elif _encodable(ch):
            out.append(ch)
        else:
            folded = "".join(
                c
                for c in unicodedata.normalize("NFKD", ch)
                if not unicodedata.combining(c) and _encodable(c) and unicodedata.category(c) != "Cc"
            )
            out.append(folded or "?")
    return "".join(out)


_PAN_SEPARATORS = re.compile(r"[\s\-.]")
_DIGITS = frozenset("0123456789")


def mask_card_number(value: str) -> str:
    """Keeps at most the first 6 and last 4 digits (PCI DSS), whatever the partner sent us.

    Applied even to numbers that arrive masked, so a partner that forgets to mask, or masks
    differently, still cannot put a full PAN on a receipt we issue.
    """
    compact = _PAN_SEPARATORS.sub("", value)

    def keep(part: str) -> str:
        return "".join(c if c in _DIGITS else "*" for c in part)

    if len(compact) >= 13:  # PAN length range is 13 to 19
        masked = keep(compact[:6]) + "*" * (len(compact) - 10) + keep(compact[-4:])
    elif len(compact) > 4:
        masked = "*" * (len(compact) - 4) + keep(compact[-4:])
    else:
        masked = "****"
    assert not re.search(r"\d{11,}", masked), "a card number escaped masking"
    return masked


def _clip(value: str, limit: int = 240) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def _date(value: datetime | None) -> str:
    return value.strftime("%d/%m/%Y") if value else DASH


def _money(value: Decimal, currency: str) -> str:
    return format_fr(value, currency)


def _currency_label(code: str) -> str:
    return CURRENCY_LABELS.get(code.upper(), code)


def _or_dash(value: str | None) -> str:
    return value if value and value.strip() else DASH


def _as_utc(value: datetime) -> datetime:
    # fpdf2 reads a naive datetime as *machine-local* time, which would make the bytes depend on the
    # host's TZ; the ledger's naive timestamps are UTC, so say so.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# ---------------------------------------------------------------------------------------- the canvas


class _PortnetPDF(FPDF):
    """A4 page with the PORTNET band on top and the help-desk footer at the bottom of every page."""

    def __init__(
        self,
        *,
        doc_title: str,
        doc_ref: str,
        created: datetime,
        subject: str,
        accent: tuple[int, int, int],
    ) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.core_fonts_encoding = PDF_ENCODING
        self.doc_title = doc_title
        self.doc_ref = doc_ref
        self.accent = accent
        self.set_margins(15, 42, 15)
        self.set_auto_page_break(auto=True, margin=24)
        self.set_title(f"{doc_title} {doc_ref}")
        self.set_author(AUTHOR)
        self.set_creator("PortNet Payments")
        self.set_subject(subject)
        self.set_lang("fr-MA")
        self.set_creation_date(_as_utc(created))
        self.set_draw_color(*RULE)
        self.set_line_width(0.2)

    def normalize_text(self, text: str) -> str:
        # The one door all drawn text goes through: folding here means no call site can forget to.
        return super().normalize_text(pdf_safe_text(text))

    def header(self) -> None:
        self.set_fill_color(*NAVY)
        self.rect(0, 0, self.w, 30, style="F")
        self.set_fill_color(*self.accent)
        self.rect(0, 30, self.w, 1.2, style="F")
        self.set_text_color(*WHITE)
        self.set_xy(15, 7)
        self.set_font(FONT, "B", 24)
        self.cell(90, 10, "PORTNET")
        self.set_xy(15, 18)
        self.set_font(FONT, "", 8.5)
        self.cell(110, 5, TAGLINE)
        self.set_xy(110, 8)
        self.set_font(FONT, "B", 16)
        self.cell(85, 9, self.doc_title, align="R")
        self.set_xy(110, 18)
        self.set_font(FONT, "", 10)
        self.cell(85, 5, f"N° {self.doc_ref}", align="R")
        self.set_text_color(*BLACK)
        self.set_y(40)

    def footer(self) -> None:
        self.set_y(-18)
        self.set_draw_color(*RULE)
        self.line(15, self.get_y(), self.w - 15, self.get_y())
        self.ln(2)
        self.set_font(FONT, "B", 8)
        self.set_text_color(*NAVY)
        self.cell(0, 4, AUTHOR, align="C", new_x="LMARGIN", new_y="NEXT")
        self.set_font(FONT, "", 8)
        self.set_text_color(*MUTED)
        self.cell(0, 4, f"HelpDesk : {HELPDESK_PHONE}  ·  Réclamations : {RECLAMATION_URL}", align="C")
        self.set_x(15)
        self.cell(0, 4, f"Page {self.page_no()}/{{nb}}", align="R")
        self.set_text_color(*BLACK)

    # -- building blocks

    def section_title(self, text: str) -> None:
        if self.will_page_break(16):
            self.add_page()
        self.ln(3)
        self.set_font(FONT, "B", 10.5)
        self.set_text_color(*NAVY)
        self.cell(0, 6, text.upper(), new_x="LMARGIN", new_y="NEXT")
        self.set_draw_color(*NAVY)
        self.set_line_width(0.4)
        self.line(self.l_margin, self.get_y(), self.l_margin + 18, self.get_y())
        self.set_line_width(0.2)
        self.set_draw_color(*RULE)
        self.set_text_color(*BLACK)
        self.ln(2.5)

    def party_boxes(
        self,
        left: tuple[str, str, list[tuple[str, str]]],
        right: tuple[str, str, list[tuple[str, str]]],
    ) -> None:
        """Two framed boxes side by side, framed to the taller one so the row looks like one unit."""
        top = self.get_y()
        gap = 6.0
        width = (self.epw - gap) / 2
        bottoms = [
            self._party_box(self.l_margin, top, width, *left),
            self._party_box(self.l_margin + width + gap, top, width, *right),
        ]
        height = max(bottoms) - top + 2
        for x in (self.l_margin, self.l_margin + width + gap):
            self.rect(x, top, width, height)
        self.set_xy(self.l_margin, top + height + 2)

    def _party_box(
        self, x: float, y: float, width: float, title: str, name: str, rows: list[tuple[str, str]]
    ) -> float:
        # The frame is drawn after the text, so the text must not trigger a page break mid-box:
        # absurdly long values are cut rather than split across pages.
        name = _clip(name)
        rows = [(label, _clip(value)) for label, value in rows]
        self.set_xy(x, y)
        self.set_fill_color(*TINT)
        self.set_font(FONT, "B", 8.5)
        self.set_text_color(*NAVY)
        self.cell(width, 6.5, f"  {title.upper()}", fill=True, new_x="LEFT", new_y="NEXT")
        self.set_text_color(*BLACK)
        inner = width - 5
        self.set_xy(x + 2.5, self.get_y() + 1.5)
        self.set_font(FONT, "B", 10)
        self.multi_cell(inner, 5, name, align="L", new_x="LEFT", new_y="NEXT")
        self.ln(0.5)
        label_w = 27.0
        for label, value in rows:
            row_y = self.get_y()
            self.set_xy(x + 2.5, row_y)
            self.set_font(FONT, "", 8)
            self.set_text_color(*MUTED)
            self.cell(label_w, 4.6, label)
            self.set_text_color(*BLACK)
            self.set_font(FONT, "", 9)
            self.set_xy(x + 2.5 + label_w, row_y)
            self.multi_cell(inner - label_w, 4.6, value, align="L", new_x="LEFT", new_y="NEXT")
        return self.get_y()

    def key_value_grid(self, pairs: list[tuple[str, str]]) -> None:
        """Label/value pairs two per row: dense, yet every value sits next to its label."""
        label_style = FontFace(emphasis="BOLD", color=NAVY, fill_color=TINT, size_pt=8.5)
        value_style = FontFace(emphasis="", color=BLACK, fill_color=WHITE, size_pt=8.5)
        with self.table(
            first_row_as_headings=False,
            col_widths=(22, 28, 22, 28),
            text_align=("LEFT", "LEFT", "LEFT", "LEFT"),
            line_height=5,
            padding=(1.2, 2),
            borders_layout=TableBordersLayout.ALL,
        ) as table:
            for i in range(0, len(pairs), 2):
                row = table.row()
                chunk = pairs[i : i + 2]
                for label, value in chunk:
                    row.cell(label, style=label_style)
                    # A lone last pair spans the row rather than leaving an empty pair of cells.
                    row.cell(value, style=value_style, colspan=3 if len(chunk) == 1 else 1)
        self.ln(2)

    def totals_box(self, rows: list[tuple[str, str]]) -> None:
        """Right-aligned amounts, last row emphasised: the eye lands on what is due."""
        plain_label = FontFace(emphasis="", color=MUTED, fill_color=TINT, size_pt=9.5)
        plain_value = FontFace(emphasis="", color=BLACK, fill_color=WHITE, size_pt=9.5)
        total_style = FontFace(emphasis="BOLD", color=WHITE, fill_color=NAVY, size_pt=10)
        if self.will_page_break(8 * len(rows) + 4):
            self.add_page()
        self.ln(1)
        with self.table(
            first_row_as_headings=False,
            width=90,
            align="RIGHT",
            col_widths=(45, 45),
            text_align=("LEFT", "RIGHT"),
            line_height=5.5,
            padding=(1.2, 2.5),
        ) as table:
            for i, (label, value) in enumerate(rows):
                last = i == len(rows) - 1
                row = table.row()
                row.cell(label, style=total_style if last else plain_label)
                row.cell(value, style=total_style if last else plain_value)
        self.ln(2)

    def data_table(
        self,
        headings: Sequence[str],
        rows: Sequence[Sequence[str]],
        col_widths: Sequence[float],
        text_align: Sequence[str],
        empty_text: str,
        footer_row: tuple[str, str] | None = None,
    ) -> None:
        heading_style = FontFace(emphasis="BOLD", color=WHITE, fill_color=NAVY, size_pt=8.5)
        body_style = FontFace(emphasis="", color=BLACK, size_pt=9)
        foot_style = FontFace(emphasis="BOLD", color=NAVY, fill_color=TINT, size_pt=9.5)
        with self.table(
            col_widths=tuple(col_widths),
            text_align=tuple(text_align),
            headings_style=heading_style,
            line_height=5,
            padding=(1.5, 2),
            cell_fill_color=(247, 249, 252),
            cell_fill_mode="ROWS",
        ) as table:
            head = table.row()
            for title in headings:
                head.cell(title)
            if not rows:
                table.row().cell(empty_text, colspan=len(headings), align="C", style=body_style)
            for values in rows:
                row = table.row()
                for value in values:
                    row.cell(value, style=body_style)
            if footer_row is not None:
                row = table.row()
                row.cell(footer_row[0], colspan=len(headings) - 1, align="R", style=foot_style)
                row.cell(footer_row[1], align="R", style=foot_style)
        self.ln(2)

    def paragraph(self, text: str, size: float = 9, color: tuple[int, int, int] = BLACK) -> None:
        self.set_font(FONT, "", size)
        self.set_text_color(*color)
        self.multi_cell(0, 4.8, text, align="L", new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(*BLACK)


def _emitter_rows(emitter: EmitterInfo) -> list[tuple[str, str]]:
    rows = [("Code émetteur", emitter.code)]
    rc = " n° ".join(p for p in (emitter.rc_centre, emitter.rc_number) if p and p.strip())
    rows.append(("RC", rc or DASH))
    rows.append(("IFU", _or_dash(emitter.ifu)))
    rows.append(("Adresse", _or_dash(emitter.address)))
    return rows


def _client_rows(client: ClientInfo) -> list[tuple[str, str]]:
    return [
        ("Code douanier", client.customs_code),
        ("ICE", _or_dash(client.ice)),
        ("Adresse", _or_dash(client.address)),
    ]


# ------------------------------------------------------------------------------------------- renders


def render_invoice_pdf(doc: InvoiceDocument) -> bytes:
    """The invoice as the client would print it; same input, same bytes."""
    # A credit note must not be mistaken for a bill at a glance, so it gets its own heading.
    is_credit_note = doc.type_label.strip().lower() == "avoir"
    pdf = _PortnetPDF(
        doc_title="Facture d'avoir" if is_credit_note else "Facture",
        doc_ref=doc.number,
        created=doc.invoice_date,
        subject=f"Facture {doc.number} - {doc.emitter.name} - {doc.client.name}",
        accent=ORANGE,
    )
    pdf.add_page()

    pdf.party_boxes(
        ("Émetteur", doc.emitter.name, _emitter_rows(doc.emitter)),
        ("Client", doc.client.name, _client_rows(doc.client)),
    )

    pdf.section_title("Informations de la facture")
    pdf.key_value_grid(
        [
            ("N° facture", doc.number),
            ("Date facture", _date(doc.invoice_date)),
            ("Type", doc.type_label),
            ("Échéance", _date(doc.due_date)),
            ("Facture principale", _or_dash(doc.principal_number)),
            ("Statut", doc.status_label),
            ("Devise", _currency_label(doc.currency)),
        ]
    )

    pdf.section_title("Prestations")
    pdf.data_table(
        headings=("Prestation", "Type d'opération", "Référence", "Date fin"),
        rows=[
            (line.prestation, line.operation_type, _or_dash(line.reference), _date(line.end_date))
            for line in doc.lines
        ],
        col_widths=(32, 30, 22, 16),
        text_align=("LEFT", "LEFT", "LEFT", "CENTER"),
        empty_text="Aucune prestation détaillée",
    )

    pdf.totals_box(
        [
            ("Montant HT", _money(doc.amount_ht, doc.currency)),
            ("TVA", _money(doc.amount_tva, doc.currency)),
            ("Montant TTC", _money(doc.amount_ttc, doc.currency)),
        ]
    )

    if doc.description and doc.description.strip():
        pdf.section_title("Description")
        pdf.paragraph(doc.description)

    return bytes(pdf.output())


def render_receipt_pdf(doc: ReceiptDocument) -> bytes:
    """The proof of payment we issue; refuses to print a total its lines do not add up to."""
    lines_total = total(item.amount_ttc for item in doc.invoices)
    if lines_total != to_money(doc.total_paid):
        raise ValueError(
            f"receipt {doc.receipt_number}: total_paid {doc.total_paid} != sum of invoices {lines_total}"
        )

    pdf = _PortnetPDF(
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
    pdf.cell(pdf.epw / 2, 11, f"{_money(doc.total_paid, doc.currency)}   ", fill=True, align="R")
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
        ("Code d'autorisation", _or_dash(doc.authorization_code)),
        ("Transaction partenaire", _or_dash(doc.partner_transaction_id)),
    ]
    if doc.card_number and doc.card_number.strip():
        pairs.append(("Carte bancaire", mask_card_number(doc.card_number)))
    pairs.append(("Devise", _currency_label(doc.currency)))
    pdf.key_value_grid(pairs)

    pdf.ln(1)
    pdf.party_boxes(
        (
            "Payeur",
            _or_dash(doc.payer_name),
            [("E-mail", _or_dash(doc.payer_email))],
        ),
        ("Client", doc.client.name, _client_rows(doc.client)),
    )

    pdf.section_title("Factures réglées")
    pdf.data_table(
        headings=("N° facture", "Émetteur", "Montant TTC"),
        rows=[
            (item.number, item.emitter_name, _money(item.amount_ttc, doc.currency)) for item in doc.invoices
        ],
        col_widths=(28, 44, 28),
        text_align=("LEFT", "LEFT", "RIGHT"),
        empty_text="Aucune facture",
        footer_row=("Total payé", _money(doc.total_paid, doc.currency)),
    )

    pdf.ln(2)
    pdf.paragraph(
        f"Le paiement n° {doc.payment_id} a été confirmé le {doc.paid_at.strftime('%d/%m/%Y')} "
        f"à {doc.paid_at.strftime('%H:%M')} via {doc.channel_label}. "
        "Conservez ce reçu : il vous sera demandé pour toute réclamation relative à ce paiement.",
        size=8.5,
        color=MUTED,
    )

    return bytes(pdf.output())
