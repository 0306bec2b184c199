"""How each emitter bills: its prestations, price ranges, due days, payment methods and numbering.

The demo invoices and the benchmark's bulk invoices are both drawn from this catalogue (see
:mod:`portnet.seed.generator`), so both look like what PORTNET, ANP, MARSA MAROC, Bureau Veritas and
TUV Rheinland really send: their references (bill of lading, call, DUM, certificate), VAT rates and
the share of paid, unpaid and cancelled invoices by age.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from portnet.seed.guide import ANP, BUREAU_VERITAS, MARSAMAROC_CASA, PORTNET, TUV_RHEINLAND
from portnet.statuses import InvoiceStatus

# Fixed, not "today": the same seed must give the same rows whatever the date of the run.
GENERATION_START = date(2016, 1, 1)
GENERATION_END = date(2026, 11, 20)


_CARRIERS = ("MEDU", "MSCU", "MAEU", "CMAU", "HLCU", "CSNU", "ONEU", "EGLV")
_ANP_PORTS = ("CAS", "MOH", "JLF", "AGA", "SAF", "NAD")
_CUSTOMS_OFFICES = ("300", "301", "309", "400", "401", "500")


# Generators draw with ``int(random() * n)`` rather than ``randrange``: three times cheaper, which
# matters at a million invoices, and just as deterministic.


def _bill_of_lading(rand: Callable[[], float], year: int) -> str:
    return f"{_CARRIERS[int(rand() * len(_CARRIERS))]}{int(rand() * 10**7):07d}"


def _escale(rand: Callable[[], float], year: int) -> str:
    return f"ESC-{_ANP_PORTS[int(rand() * len(_ANP_PORTS))]}-{year}-{1 + int(rand() * 19999):05d}"


def _dum(rand: Callable[[], float], year: int) -> str:
    office = _CUSTOMS_OFFICES[int(rand() * len(_CUSTOMS_OFFICES))]
    return f"DUM {office}-010-{year}-{1 + int(rand() * 9999999):07d}"


def _bv_certificate(rand: Callable[[], float], year: int) -> str:
    return f"COC-BV-{year}-{1 + int(rand() * 999999):06d}"


def _tuv_certificate(rand: Callable[[], float], year: int) -> str:
    return f"TUV-MA-{year}-{1 + int(rand() * 999999):06d}"


_SUBSCRIPTIONS = ("Abonnement annuel IMP", "Abonnement annuel EXP", "Abonnement annuel IMP-EXP")


def _subscription(rand: Callable[[], float], year: int) -> str:
    return _SUBSCRIPTIONS[int(rand() * len(_SUBSCRIPTIONS))]


@dataclass(frozen=True)
class PrestationSpec:
    prestation: str
    operation_types: tuple[str, ...]
    reference: Callable[[Callable[[], float], int], str]
    min_cents: int
    max_cents: int


@dataclass(frozen=True)
class BillingProfile:
    """How one emitter bills: what, how much, when it is due and how it may be paid."""

    code: str
    weight: int
    payment_methods: str
    due_days: int
    items: tuple[PrestationSpec, ...]
    # Demo numbers start here; generate_invoices() continues half a million higher.
    number_base: int
    subscription: PrestationSpec | None = None
    settles_directly: bool = False


_SUBSCRIPTION = PrestationSpec("Abonnement Portnet", ("Abonnement PORTNET",), _subscription, 300000, 300000)

PROFILES: tuple[BillingProfile, ...] = (
    BillingProfile(
        PORTNET,
        15,
        "cmi,amanpay,cheque,virement",
        60,
        (
            PrestationSpec("Titre d'importation", ("Engagement d'importation",), _dum, 15000, 60000),
            PrestationSpec("Dépôt manifeste", ("Escale navire",), _escale, 20000, 90000),
        ),
        number_base=100_000,
        subscription=_SUBSCRIPTION,
        settles_directly=True,
    ),
    BillingProfile(
        ANP,
        35,
        "cmi,amanpay,virement",
        30,
        (
            PrestationSpec("Redevance marchandises", ("Import", "Export"), _bill_of_lading, 30000, 2500000),
            PrestationSpec("Droits de port", ("Escale navire",), _escale, 150000, 4500000),
            PrestationSpec("Redevance d'usage des quais", ("Escale navire",), _escale, 80000, 1200000),
        ),
        number_base=10_000_000,
    ),
    BillingProfile(
        MARSAMAROC_CASA,
        25,
        "cmi",
        30,
        (
            PrestationSpec(
                "Manutention conteneur", ("Débarquement", "Embarquement"), _bill_of_lading, 4000, 1500000
            ),
            PrestationSpec("Magasinage", ("Import",), _bill_of_lading, 2000, 600000),
            PrestationSpec("Pesage conteneur", ("Export",), _bill_of_lading, 3500, 40000),
        ),
        # Far above the 02xxxxxx-03xxxxxx numbers MARSA MAROC's own system returns in the guide.
        number_base=7_000_000,
    ),
    BillingProfile(
        BUREAU_VERITAS,
        13,
        "cmi,virement",
        30,
        (
            PrestationSpec("Contrôle technique", ("Inspection",), _dum, 60000, 900000),
            PrestationSpec("Certificat de conformité", ("Export", "Import"), _bv_certificate, 45000, 350000),
        ),
        number_base=20_000_000,
    ),
    BillingProfile(
        TUV_RHEINLAND,
        12,
        "cmi,cheque,virement",
        45,
        (
            PrestationSpec("Contrôle technique", ("Inspection",), _dum, 55000, 850000),
            PrestationSpec("Certificat de conformité", ("Import",), _tuv_certificate, 40000, 300000),
        ),
        number_base=30_000_000,
    ),
)

BENCH_NUMBER_OFFSET = 500_000
MAX_NUMBER = 99_999_999

VAT_RATES = (Decimal("0.20"), Decimal("0.14"), Decimal("0.10"), Decimal("0.07"))


def _percent_table(weighted: Iterable[tuple[Any, int]]) -> tuple[Any, ...]:
    """100 slots, one per percent: a draw is one index instead of a bisect."""
    table = tuple(value for value, weight in weighted for _ in range(weight))
    assert len(table) == 100
    return table


VAT_TABLE = _percent_table(zip(VAT_RATES, (85, 7, 5, 3), strict=True))

_S = InvoiceStatus
# Older invoices have had time to be paid; recent ones are mostly waiting.
OLD_STATUS_TABLE = _percent_table(
    (
        (_S.UNPAID.value, 45),
        (_S.PAID.value, 38),
        (_S.PAYMENT_CONFIRMED.value, 4),
        (_S.AWAITING_PARTNER.value, 4),
        (_S.BLOCKED.value, 3),
        (_S.CANCELLED.value, 6),
    )
)
RECENT_STATUS_TABLE = _percent_table(
    (
        (_S.UNPAID.value, 72),
        (_S.PAID.value, 14),
        (_S.PAYMENT_CONFIRMED.value, 4),
        (_S.AWAITING_PARTNER.value, 4),
        (_S.BLOCKED.value, 2),
        (_S.CANCELLED.value, 4),
    )
)


def weighted_profiles(profiles: Iterable[BillingProfile]) -> tuple[BillingProfile, ...]:
    """Each profile repeated ``weight`` times, so that a uniform draw follows the weights."""
    return tuple(profile for profile in profiles for _ in range(profile.weight))
