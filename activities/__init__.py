"""Activities: every piece of I/O a payment needs, grouped by the partner or the ledger they talk to.

Each module exports its ``ACTIVITIES``; the worker registers them all. An activity's NAME (its
function name, or ``@activity.defn(name=...)``) is what recorded histories hold: never change one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities import (
    amanpay,
    cheque_transfer,
    cmi_card,
    emitters,
    fatourati,
    ledger,
    mail,
    marsa_maroc,
    paydirect,
    receipts,
    reconciliation,
    unapplied,
)

ACTIVITIES: list[Callable[..., Any]] = [
    *ledger.ACTIVITIES,
    *receipts.ACTIVITIES,
    *mail.ACTIVITIES,
    *emitters.ACTIVITIES,
    *cmi_card.ACTIVITIES,
    *fatourati.ACTIVITIES,
    *amanpay.ACTIVITIES,
    *paydirect.ACTIVITIES,
    *cheque_transfer.ACTIVITIES,
    *marsa_maroc.ACTIVITIES,
    *reconciliation.ACTIVITIES,
    *unapplied.ACTIVITIES,
]
