"""The parties a document names: the emitter of an invoice and the client who owes or paid it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from portnet.documents.text import DASH, or_dash
from portnet.i18n import N_


def require_decimal(owner: str, name: str, value: object) -> None:
    # A float amount has already lost its centimes somewhere upstream; refuse it at the door.
    if not isinstance(value, Decimal):
        raise TypeError(f"{owner}.{name} must be a Decimal, got {type(value).__name__}")


@dataclass(frozen=True)
class EmitterInfo:
    name: str
    code: str
    rc_centre: str | None = None
    rc_number: str | None = None
    ifu: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class ClientInfo:
    name: str
    customs_code: str
    ice: str | None = None
    address: str | None = None


def emitter_rows(emitter: EmitterInfo) -> list[tuple[str, str]]:
    rows = [(N_("Code émetteur"), emitter.code)]
    rc = " n° ".join(p for p in (emitter.rc_centre, emitter.rc_number) if p and p.strip())
    rows.append(("RC", rc or DASH))
    rows.append(("IFU", or_dash(emitter.ifu)))
    rows.append((N_("Adresse"), or_dash(emitter.address)))
    return rows


def client_rows(client: ClientInfo) -> list[tuple[str, str]]:
    return [
        (N_("Code douanier"), client.customs_code),
        ("ICE", or_dash(client.ice)),
        (N_("Adresse"), or_dash(client.address)),
    ]
