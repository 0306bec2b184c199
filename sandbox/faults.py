"""Partner faults on demand: every sandbox can misbehave the way real partners do, for tests and chaos.

Per partner (``PARTNERS``), a ``PartnerFaults`` record in the sandbox's store says how often:

- its merchant API (the calls our platform makes: CMI's status API, Fatourati's and Amanpay's
  order APIs, PayDirect, the SMS gateway, the emitters' notice endpoint, the SMTP server) answers
  a server error (``error_rate``, 503), hangs past any caller's timeout (``timeout_rate``: the
  answer, a 504, comes after ``hang_seconds``) or answers late (``slow_rate``, ``slow_seconds``);
- its calls to us (callbacks, notifications, acknowledgements: sandbox/deliveries.py) are dropped
  (``drop_rate``: never sent, as if the partner lost them), duplicated (``duplicate_rate``: sent
  twice; ``duplicate_delay_seconds`` > 0 makes the copy a stale redelivery that arrives after
  later events) or delivered out of order (``reorder_rate``: held back ``reorder_hold_seconds`` so
  that later events overtake it: a declined card callback delivered after the approved one).

All rates are 0 by default (no fault). They are drawn from ``random.Random(seed, partner, draw
number)`` when a seed is set (the same sequence on every run), from the system's randomness
otherwise; ``next`` forces the next N calls of a kind (``{"error": 2}``: the next two API calls
fail), before any rate. Faults are state like the rest: kept in the store, so a restart of the
sandboxes keeps them, and shown on the sandbox index page. MARSA MAROC's own ``admin/faults``
(malformed pages, duplicate rows) stays as it was; its API is not in this list.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from sandbox.store import Record, Tx

ApiFault = Literal["error", "timeout", "slow"]
DeliveryFault = Literal["drop", "duplicate", "reorder"]
API_FAULTS: tuple[ApiFault, ...] = ("error", "timeout", "slow")
DELIVERY_FAULTS: tuple[DeliveryFault, ...] = ("drop", "duplicate", "reorder")


@dataclass(frozen=True)
class Partner:
    slug: str  # its path under /sandbox/ and its key in the store
    name: str
    api: re.Pattern[str] | None  # the merchant API's paths (method + path), None: no HTTP API
    deliveries: tuple[str, ...]  # the delivery purposes it sends us


PARTNERS: tuple[Partner, ...] = (
    Partner("cmi", "CMI (carte)", re.compile(r"POST /sandbox/cmi/fim/api$"), ("cmi_callback",)),
    Partner(
        "fatourati", "CMI Fatourati", re.compile(r"\w+ /sandbox/fatourati/api/"), ("fatourati_callback",)
    ),
    Partner(
        "amanpay",
        "Amanpay (Tashilat, Amanty)",
        re.compile(r"\w+ /sandbox/amanpay/api/"),
        ("amanpay_notification",),
    ),
    Partner("paydirect", "PayDirect", re.compile(r"POST /sandbox/paydirect/authorizations"), ()),
    Partner("sms", "Passerelle SMS", re.compile(r"POST /sandbox/sms/messages$"), ()),
    Partner("mail", "Serveur SMTP", None, ()),
    Partner(
        "emitters",
        "Émetteurs",
        re.compile(r"POST /sandbox/emitters/[^/]+/settlements$"),
        ("emitter_auto_ack", "emitter_ack"),
    ),
)
BY_SLUG = {p.slug: p for p in PARTNERS}
BY_PURPOSE = {purpose: p.slug for p in PARTNERS for purpose in p.deliveries}


class FaultSettings(BaseModel):
    """What an admin sets; validated field by field (rates in [0, 1], each family summing to ≤ 1)."""

    model_config = {"extra": "forbid"}

    error_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    slow_rate: float = Field(default=0.0, ge=0, le=1)
    slow_seconds: float = Field(default=2.0, ge=0, le=600)
    hang_seconds: float = Field(default=120.0, ge=0, le=3600)
    error_status: int = Field(default=503, ge=500, le=599)
    drop_rate: float = Field(default=0.0, ge=0, le=1)
    duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    duplicate_delay_seconds: float = Field(default=0.0, ge=0, le=3600)
    reorder_rate: float = Field(default=0.0, ge=0, le=1)
    reorder_hold_seconds: float = Field(default=3.0, ge=0, le=3600)
    seed: int | None = None
    next: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _families(self) -> FaultSettings:
        if self.error_rate + self.timeout_rate + self.slow_rate > 1:
            raise ValueError("error_rate + timeout_rate + slow_rate ne peut dépasser 1")
        if self.drop_rate + self.duplicate_rate + self.reorder_rate > 1:
            raise ValueError("drop_rate + duplicate_rate + reorder_rate ne peut dépasser 1")
        for kind, count in self.next.items():
            if kind not in API_FAULTS + DELIVERY_FAULTS or count < 0:
                raise ValueError(f"panne forcée inconnue ou négative : {kind!r}")
        return self

    @property
    def active(self) -> bool:
        rates = (self.error_rate, self.timeout_rate, self.slow_rate, self.drop_rate)
        return any(rates) or self.duplicate_rate > 0 or self.reorder_rate > 0 or any(self.next.values())


class PartnerFaults(Record):
    """A partner's fault settings, how many draws were made and how many faults each kind showed."""

    kind = "partner_faults"

    partner: str
    settings: FaultSettings = Field(default_factory=FaultSettings)
    draws: int = 0
    injected: dict[str, int] = Field(default_factory=dict)

    def key(self) -> str:
        return self.partner


def faults_of(tx: Tx, partner: str) -> PartnerFaults:
    return tx.get(PartnerFaults, partner) or PartnerFaults(partner=partner)


def all_faults(tx: Tx) -> list[PartnerFaults]:
    return [faults_of(tx, p.slug) for p in PARTNERS]


def parse_settings(body: Any) -> FaultSettings | str:
    """The settings, or a French message saying what is wrong."""
    if not isinstance(body, dict):
        return "Corps JSON attendu (un objet)."
    try:
        return FaultSettings.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'corps'} : {e['msg']}" for e in exc.errors())
        return f"Paramètres de panne invalides : {problems}"


def set_faults(tx: Tx, partner: str, settings: FaultSettings) -> PartnerFaults:
    """Replaces the settings; counters are kept (the draw sequence restarts with a new seed)."""
    current = faults_of(tx, partner)
    current.settings = settings
    current.draws = 0
    tx.put(current)
    return current


def reset_faults(tx: Tx, partner: str) -> PartnerFaults:
    return set_faults(tx, partner, FaultSettings())


def _draw(tx: Tx, partner: str, kinds: tuple[str, ...], rates: tuple[float, ...]) -> str | None:
    faults = faults_of(tx, partner)
    settings = faults.settings
    if not settings.active:
        return None
    chosen: str | None = None
    for kind in kinds:  # forced faults first, in the family's order
        if settings.next.get(kind, 0) > 0:
            settings.next[kind] -= 1
            chosen = kind
            break
    if chosen is None and any(rates):
        faults.draws += 1
        if settings.seed is None:
            roll = random.SystemRandom().random()
        else:
            roll = random.Random(f"{settings.seed}/{partner}/{faults.draws}").random()  # noqa: S311 - test faults
        threshold = 0.0
        for kind, rate in zip(kinds, rates, strict=True):
            threshold += rate
            if roll < threshold:
                chosen = kind
                break
    if chosen is not None:
        faults.injected[chosen] = faults.injected.get(chosen, 0) + 1
    tx.put(faults)
    return chosen


def draw_api_fault(tx: Tx, partner: str) -> tuple[ApiFault, FaultSettings] | None:
    """The fault (if any) this call to the partner's API shows, with the settings it needs."""
    settings = faults_of(tx, partner).settings
    rates = (settings.error_rate, settings.timeout_rate, settings.slow_rate)
    kind = _draw(tx, partner, API_FAULTS, rates)
    return None if kind is None else (kind, settings)  # type: ignore[return-value]


def draw_delivery_fault(tx: Tx, purpose: str) -> tuple[DeliveryFault, FaultSettings] | None:
    """The fault (if any) a new delivery of that purpose shows; drawn once per delivery."""
    partner = BY_PURPOSE.get(purpose)
    if partner is None:
        return None
    settings = faults_of(tx, partner).settings
    rates = (settings.drop_rate, settings.duplicate_rate, settings.reorder_rate)
    kind = _draw(tx, partner, DELIVERY_FAULTS, rates)
    return None if kind is None else (kind, settings)  # type: ignore[return-value]


def partner_of_request(method: str, path: str) -> str | None:
    """The partner whose merchant API this request calls (None for pages, admin, scripted payers)."""
    line = f"{method} {path}"
    for partner in PARTNERS:
        if partner.api is not None and partner.api.match(line):
            return partner.slug
    return None
