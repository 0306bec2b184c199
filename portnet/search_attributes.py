"""The custom search attributes of the payment workflows, declared once.

Temporal refuses to upsert an attribute the server does not know, so the dev server (launcher), the
production admin-tools job (docker-compose.yml) and the workflow code must agree on this list; a test
checks docker-compose.yml against it. Types are Temporal's names (as the ``temporal`` CLI spells them).
"""

from __future__ import annotations

SEARCH_ATTRIBUTES: dict[str, str] = {
    "PaymentChannel": "Keyword",
    "PaymentStatus": "Keyword",
    "ClientCode": "Keyword",
    "EmitterCode": "Keyword",
    "InvoiceNumbers": "KeywordList",
    "AmountTTC": "Double",
}
