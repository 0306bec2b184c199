"""Money stays Decimal: the guide's "880.80000000000002 MAD" must never come back."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portnet.money import NNBSP, api_amount, centimes, format_fr, to_money, total


def test_sum_of_guide_tva_is_exact() -> None:
    assert total([Decimal("440.40"), Decimal("440.40")]) == Decimal("880.80")
    assert format_fr(total([Decimal("440.40"), Decimal("440.40")])) == "880,80 MAD"
    assert format_fr(Decimal("5284.8")) == f"5{NNBSP}284,80 MAD"
    assert format_fr(Decimal("1234567.5"), currency=None) == f"1{NNBSP}234{NNBSP}567,50"


def test_float_is_refused() -> None:
    with pytest.raises(TypeError):
        to_money(0.1)  # type: ignore[arg-type]


def test_rounding_and_api_form() -> None:
    assert to_money("2642.405") == Decimal("2642.41")
    assert api_amount(Decimal("3600")) == "3600.00"
    assert centimes(Decimal("55.62")) == 5562
    assert format_fr(Decimal("-12.5")) == "-12,50 MAD"
    with pytest.raises(ValueError):
        to_money("abc")
