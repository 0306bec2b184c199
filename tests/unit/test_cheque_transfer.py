"""Cheque and bank transfer's pure rules: the subscription renewal date, the payer's declaration."""

from __future__ import annotations

from datetime import date

import pytest

from activities.cheque_transfer import renewed_end
from portnet.statuses import Channel
from web.channels.cheque_transfer import DeclarationError, declaration_for


def test_renewal_counts_from_the_later_of_today_and_the_current_end() -> None:
    today = date(2026, 11, 27)
    assert renewed_end(date(2026, 12, 31), today) == date(2027, 12, 31)  # early payer loses no day
    assert renewed_end(date(2025, 6, 30), today) == date(2027, 11, 27)  # lapsed: from today
    assert renewed_end(None, today) == date(2027, 11, 27)
    assert renewed_end(date(2028, 2, 29), today) == date(2029, 2, 28)


def test_declarations() -> None:
    today = date(2026, 11, 27)
    assert declaration_for(Channel.CHEQUE, {"cheque_number": "0012345", "bank": "CIH"}, today) == {
        "cheque_number": "0012345",
        "bank": "CIH",
    }
    assert declaration_for(
        Channel.BANK_TRANSFER, {"transfer_reference": "VIR 2026/11", "transfer_date": "2026-11-26"}, today
    ) == {"transfer_reference": "VIR 2026/11", "transfer_date": "2026-11-26"}
    assert declaration_for(Channel.CMI_FATOURATI, {"x": "y"}, today) is None
    for channel, bad in [
        (Channel.CHEQUE, {"cheque_number": "1", "bank": "CIH"}),
        (Channel.CHEQUE, {"cheque_number": "123456", "bank": ""}),
        (Channel.BANK_TRANSFER, {"transfer_reference": "VIR-1", "transfer_date": "2026-12-01"}),
        (Channel.BANK_TRANSFER, {"transfer_reference": "VIR-1", "transfer_date": "hier"}),
    ]:
        with pytest.raises(DeclarationError):
            declaration_for(channel, bad, today)
