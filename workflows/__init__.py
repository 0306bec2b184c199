"""Workflows: the payment attempt (``PaymentWorkflow``, its channels under channels/) and the MARSA
MAROC invoice request. The worker registers ``WORKFLOWS``.

A workflow's type name, its Update/Signal/Query names and the field names of what it exchanges are
what recorded histories hold (tests/histories/): they never change.
"""

from __future__ import annotations

from workflows.invoice_request import InvoiceRequestWorkflow
from workflows.payment import PaymentWorkflow

WORKFLOWS: list[type] = [PaymentWorkflow, InvoiceRequestWorkflow]
