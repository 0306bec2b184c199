"""Invoice and payment-receipt PDFs, rendered from plain inputs.

Rendering is pure: no database, no clock, no network. The caller maps its rows onto the dataclasses
re-exported here, so this package never drifts with the ORM and the same input always yields the same
bytes (the PDF creation date comes from the document itself, not from ``now()``).

The modules, by what they hold:

- :mod:`~portnet.documents.invoice`: the invoice (:func:`render_invoice_pdf`);
- :mod:`~portnet.documents.receipt`: the payment receipt (:func:`render_receipt_pdf`);
- :mod:`~portnet.documents.parties`: the emitter and the client a document names;
- :mod:`~portnet.documents.layout`: the PORTNET page and the blocks both documents are drawn with;
- :mod:`~portnet.documents.text`: Helvetica's character set, card-number masking, value formatting.
"""

from __future__ import annotations

from portnet.documents.invoice import InvoiceDocument, PrestationItem, render_invoice_pdf
from portnet.documents.parties import ClientInfo, EmitterInfo
from portnet.documents.receipt import PaidInvoiceItem, ReceiptDocument, render_receipt_pdf
from portnet.documents.text import mask_card_number, pdf_safe_text

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
