"""One coroutine per recorded path, grouped by channel; SCENARIOS maps a path's name to its scenario."""

from __future__ import annotations

from tests.histories.scenarios import (
    amanpay,
    cheque_transfer,
    cmi_card,
    fatourati,
    invoice_request,
    paydirect,
    reconciliation,
    unapplied,
)
from tests.histories.scenarios.common import Scenario

SCENARIOS: dict[str, Scenario] = {
    **cmi_card.SCENARIOS,
    **fatourati.SCENARIOS,
    **cheque_transfer.SCENARIOS,
    **amanpay.SCENARIOS,
    **paydirect.SCENARIOS,
    **invoice_request.SCENARIOS,
    **reconciliation.SCENARIOS,
    **unapplied.SCENARIOS,
}
