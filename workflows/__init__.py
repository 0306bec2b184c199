"""Workflows: the payment attempt (``PaymentWorkflow``, its channels under channels/), finance's
application of unapplied money (``ApplyUnappliedWorkflow``), the MARSA MAROC invoice request and
the ledger's reconciliation (``ReconciliationWorkflow``, on a Schedule).
The worker registers ``WORKFLOWS``.

A workflow's type name, its Update/Signal/Query names and the field names of what it exchanges are
what recorded histories hold (tests/histories/): they never change.
"""

from __future__ import annotations


def __getattr__(name: str) -> list[type]:
    """``WORKFLOWS``, built on first use rather than when the package is imported.

    Temporal's sandbox runs every workflow execution in a fresh import of its module, which imports
    this package first: a registry built at import time would load every other workflow module into
    each payment's sandbox as well.
    """
    if name != "WORKFLOWS":
        raise AttributeError(f"module 'workflows' has no attribute {name!r}")
    from workflows.invoice_request import InvoiceRequestWorkflow
    from workflows.payment import PaymentWorkflow
    from workflows.reconciliation import ReconciliationWorkflow
    from workflows.unapplied import ApplyUnappliedWorkflow

    return [PaymentWorkflow, InvoiceRequestWorkflow, ReconciliationWorkflow, ApplyUnappliedWorkflow]
