"""The demo's user accounts: one per demo company, finance staff and an administrator.

Written only where the username is missing, so a demo user's changed password stays changed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from sqlmodel import Session, select

from portnet.models import Company, User
from portnet.security import hash_password
from portnet.statuses import Role

DEMO_PASSWORD = "Portnet2026!"  # noqa: S105  (published in the README, demo accounts only)


@dataclass(frozen=True)
class UserSpec:
    username: str
    role: Role
    customs_code: str | None
    full_name: str
    email: str


USERS: tuple[UserSpec, ...] = (
    UserSpec("sataa", Role.CLIENT, "290240", "Comptabilité SATAA", "sataa@demo.portnet.ma"),
    # The guide's payer of 00069321 (its three Amanpay attempts of 22/12/2017).
    UserSpec("yary", Role.CLIENT, "290240", "Y. ARY (SATAA)", "yary@demo.portnet.ma"),
    UserSpec("aska", Role.CLIENT, "93583", "Comptabilité ASKA", "aska@demo.portnet.ma"),
    UserSpec("tmta", Role.CLIENT, "1247", "Comptabilité TMTA", "tmta@demo.portnet.ma"),
    UserSpec("finance", Role.FINANCE, None, "Direction financière PortNet", "finance@demo.portnet.ma"),
    UserSpec("admin", Role.ADMIN, None, "Administrateur PortNet", "admin@demo.portnet.ma"),
)


@lru_cache(maxsize=1)
def _demo_password_hash() -> str:
    """One argon2id hash shared by the demo accounts.

    Their password is published in the README, so distinct salts protect nothing, while each hash
    costs a few hundred milliseconds on every fresh test database.
    """
    return hash_password(DEMO_PASSWORD)


def ensure_users(session: Session, companies: dict[str, Company], created: Counter[str]) -> None:
    """The demo users missing by username; a present one is left as is, password included."""
    existing = set(session.exec(select(User.username)).all())
    for spec in USERS:
        if spec.username in existing:
            continue
        session.add(
            User(
                username=spec.username,
                password_hash=_demo_password_hash(),
                role=spec.role.value,
                company_id=companies[spec.customs_code].id if spec.customs_code else None,
                full_name=spec.full_name,
                email=spec.email,
                must_change_password=False,
            )
        )
        created["users"] += 1
    session.flush()
