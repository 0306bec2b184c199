"""Money is Decimal with two places, end to end.

The guide shows "Total TVA: 880.80000000000002 MAD": a float sum. Every amount here is a Decimal
quantized to the centime, summed as Decimal, and formatted the French way only at the edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
NNBSP = "\u202f"  # narrow no-break space, the fr_MA thousands separator


def to_money(value: Decimal | str | int) -> Decimal:
    """Parses and quantizes; a float is refused on purpose."""
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    try:
        return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc


def total(values: Iterable[Decimal]) -> Decimal:
    return sum((to_money(v) for v in values), Decimal("0.00"))


def api_amount(value: Decimal) -> str:
    """The JSON API form: "3600.00"."""
    return f"{to_money(value):.2f}"


def format_fr(value: Decimal, currency: str | None = "MAD", thousands: str = NNBSP) -> str:
    """French form of the guide: ``5 284,80 MAD`` (narrow no-break space between thousands)."""
    q = to_money(value)
    sign = "-" if q < 0 else ""
    units, cents = f"{abs(q):.2f}".split(".")
    groups: list[str] = []
    while units:
        groups.insert(0, units[-3:])
        units = units[:-3]
    text = f"{sign}{thousands.join(groups)},{cents}"
    return f"{text} {currency}" if currency else text


def centimes(value: Decimal) -> int:
    return int(to_money(value) * 100)
