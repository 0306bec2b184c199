"""« Nouveau client ? »: a company asks for access to the portal; finance sees the request and handles it.

The guide's login page offers a form to download ("Demande d'accès"); here the same information is
typed online, stored, and listed in the finance back-office, where finance marks it handled once the
account exists (accounts are still created with ``python -m portnet.cli create-user``). The form is
public, so it is throttled per client address with the login's rules and table, under a scope of
its own (portnet/login_throttle.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from portnet import login_throttle
from portnet.audit import audit
from portnet.i18n import N_
from portnet.localtime import to_local
from portnet.models import AccessRequest, User
from portnet.settings import Settings

THROTTLE_KIND = "access-"
ROLES = {
    "importateur": "Importateur",
    "exportateur": "Exportateur",
    "transitaire": N_("Transitaire / commissionnaire en douane"),
    "transporteur": "Transporteur",
    "autre": "Autre",
}
FIELDS = ("company_name", "customs_code", "contact_name", "email", "phone", "role")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 .\-]{7,19}$")
_CUSTOMS = re.compile(r"^[0-9]{1,10}$")
RECEIVED = N_(
    "Votre demande d'accès a été enregistrée. Le service PortNet vous contactera à l'adresse e-mail "
    "indiquée une fois votre compte créé."
)


class AccessRequestError(Exception):
    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


@dataclass
class AccessRequestInput:
    company_name: str
    customs_code: str
    contact_name: str
    email: str
    phone: str
    role: str


def problems_of(data: AccessRequestInput) -> dict[str, str]:
    """French messages per field; empty when the request may be stored."""
    problems: dict[str, str] = {}
    if not 2 <= len(data.company_name.strip()) <= 200:
        problems["company_name"] = N_("Indiquez la raison sociale de la société (2 à 200 caractères).")
    if not _CUSTOMS.match(data.customs_code.strip()):
        problems["customs_code"] = N_("Le code douanier est composé de chiffres (10 au plus).")
    if not 2 <= len(data.contact_name.strip()) <= 150:
        problems["contact_name"] = N_("Indiquez le nom et le prénom du contact.")
    if len(data.email) > 254 or not _EMAIL.match(data.email.strip()):
        problems["email"] = N_("Indiquez une adresse e-mail valide, par exemple nom@societe.ma.")
    if not _PHONE.match(data.phone.strip()):
        problems["phone"] = N_("Indiquez un numéro de téléphone, par exemple +212 522 00 00 00.")
    if data.role not in ROLES:
        problems["role"] = N_("Choisissez le profil de la société.")
    return problems


def submit(
    db: Session, settings: Settings, data: AccessRequestInput, address: str | None, now: datetime
) -> AccessRequest:
    """Stores the request; raises AccessRequestError (422 invalid, 429 too many from this address)."""
    problems = problems_of(data)
    if problems:
        raise AccessRequestError(" ".join(problems.values()))
    attempt = login_throttle.begin(db, settings, data.email, address, now, kind=THROTTLE_KIND)
    if not attempt.allowed:
        audit("access_request.refused_throttled", address=attempt.address)
        raise AccessRequestError(
            N_("Trop de demandes d'accès envoyées depuis cette adresse. Réessayez plus tard."), 429
        )
    login_throttle.failed(db, settings, attempt, now)
    row = AccessRequest(
        company_name=data.company_name.strip(),
        customs_code=data.customs_code.strip(),
        contact_name=data.contact_name.strip(),
        email=data.email.strip(),
        phone=data.phone.strip(),
        role=data.role,
        created_at=now,
    )
    db.add(row)
    db.commit()
    db.refresh(row)
    audit("access_request.received", id=row.id, customs_code=row.customs_code, address=attempt.address)
    return row


def list_requests(db: Session, status: str = "open", limit: int = 200) -> list[AccessRequest]:
    statement = select(AccessRequest)
    if status == "open":
        statement = statement.where(col(AccessRequest.handled_at).is_(None))
    elif status == "handled":
        statement = statement.where(col(AccessRequest.handled_at).is_not(None))
    return list(db.exec(statement.order_by(col(AccessRequest.created_at).desc()).limit(limit)).all())


def open_count(db: Session) -> int:
    return int(db.exec(select(func.count()).where(col(AccessRequest.handled_at).is_(None))).one())


def mark_handled(db: Session, request_id: int, user: User, now: datetime) -> AccessRequest:
    row = db.get(AccessRequest, request_id)
    if row is None:
        raise AccessRequestError(N_("Demande d'accès introuvable."), 404)
    if row.handled_at is not None:
        raise AccessRequestError(N_("Cette demande d'accès a déjà été traitée."), 409)
    row.handled_at = now
    row.handled_by = user.username
    db.add(row)
    db.commit()
    audit("access_request.handled", id=row.id, user=user.username)
    return row


def request_json(row: AccessRequest) -> dict[str, Any]:
    return {
        "id": row.id,
        "company_name": row.company_name,
        "customs_code": row.customs_code,
        "contact_name": row.contact_name,
        "email": row.email,
        "phone": row.phone,
        "role": row.role,
        "role_label": ROLES.get(row.role, row.role),
        "created_at": to_local(row.created_at).isoformat(),
        "status": "handled" if row.handled_at else "open",
        "handled_at": to_local(row.handled_at).isoformat() if row.handled_at else None,
        "handled_by": row.handled_by,
    }
