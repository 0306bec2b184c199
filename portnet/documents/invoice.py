"""The invoice PDF, as the client would print it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from portnet import i18n
from portnet.documents.layout import ORANGE, PortnetPDF, drawable_language
from portnet.documents.parties import ClientInfo, EmitterInfo, client_rows, emitter_rows, require_decimal
from portnet.documents.text import DASH, currency_label, or_dash
from portnet.i18n import gettext as _


@dataclass(frozen=True)
class PrestationItem:
    prestation: str
    operation_type: str
    reference: str | None = None
    end_date: datetime | None = None


@dataclass(frozen=True)
class InvoiceDocument:
    """Labels (type, status) arrive in French, the catalogs' msgids; ``language`` is the reader's."""

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
    language: str = "fr"

    def __post_init__(self) -> None:
        for name in ("amount_ht", "amount_tva", "amount_ttc"):
            require_decimal("InvoiceDocument", name, getattr(self, name))


def render_invoice_pdf(doc: InvoiceDocument) -> bytes:
    """The invoice as the client would print it; same input, same bytes."""
    with i18n.use_locale(drawable_language(doc.language)):
        return _render_invoice_pdf(doc)


def format_money(value: Decimal, currency: str) -> str:
    return i18n.format_amount(value, currency)


def format_date(value: datetime | None) -> str:
    return i18n.format_day(value) if value else DASH


def _render_invoice_pdf(doc: InvoiceDocument) -> bytes:
    # A credit note must not be mistaken for a bill at a glance, so it gets its own heading.
    is_credit_note = doc.type_label.strip().lower() == "avoir"
    pdf = PortnetPDF(
        doc_title=_("Facture d'avoir") if is_credit_note else _("Facture"),
        doc_ref=doc.number,
        created=doc.invoice_date,
        subject=_("Facture %(number)s - %(emitter)s - %(client)s")
        % {"number": doc.number, "emitter": doc.emitter.name, "client": doc.client.name},
        accent=ORANGE,
    )
    pdf.add_page()

    boxes = [
        (_("Émetteur"), doc.emitter.name, [(_(label), value) for label, value in emitter_rows(doc.emitter)]),
        (_("Client"), doc.client.name, [(_(label), value) for label, value in client_rows(doc.client)]),
    ]
    first, second = pdf.in_reading_order(boxes)
    pdf.party_boxes(first, second)

    pdf.section_title(_("Informations de la facture"))
    pdf.key_value_grid(
        [
            (_("N° facture"), doc.number),
            (_("Date facture"), format_date(doc.invoice_date)),
            (_("Type"), _(doc.type_label)),
            (_("Échéance"), format_date(doc.due_date)),
            (_("Facture principale"), or_dash(doc.principal_number)),
            (_("Statut"), _(doc.status_label)),
            (_("Devise"), _(currency_label(doc.currency))),
        ]
    )

    pdf.section_title(_("Prestations"))
    pdf.data_table(
        headings=(_("Prestation"), _("Type d'opération"), _("Référence"), _("Date fin")),
        rows=[
            (line.prestation, line.operation_type, or_dash(line.reference), format_date(line.end_date))
            for line in doc.lines
        ],
        col_widths=(32, 30, 22, 16),
        text_align=("LEFT", "LEFT", "LEFT", "CENTER"),
        empty_text=_("Aucune prestation détaillée"),
    )

    pdf.totals_box(
        [
            (_("Montant HT"), format_money(doc.amount_ht, doc.currency)),
            (_("TVA"), format_money(doc.amount_tva, doc.currency)),
            (_("Montant TTC"), format_money(doc.amount_ttc, doc.currency)),
        ]
    )

    if doc.description and doc.description.strip():
        pdf.section_title(_("Description"))
        pdf.paragraph(doc.description)

    return bytes(pdf.output())
