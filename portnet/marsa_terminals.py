"""MARSA MAROC's terminals as emitters: the terminal chosen on "Nouvelle demande de facture" is the
emitter of the invoices it returns ("MARSAMAROC CASA Port: Casablanca" in the guide).

Casablanca keeps the emitter code every existing CASA invoice and settlement notice carries
(``MARSA_MAROC_EMITTER_CODE``, 611MARS001); every other terminal of ``MARSA_MAROC_TERMINALS`` is
filed under ``611MARS<terminal>`` ("MARSAMAROC MOHA"...). The demo seed creates them all, and the
ledger upsert creates a missing one (a terminal added to the setting later) on first use.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from portnet.models import Emitter
from portnet.settings import Settings

CASABLANCA = "CASA"
EMITTER_ADDRESSES = {CASABLANCA: "175, Boulevard Mohamed Zerktouni, 20100 Casablanca"}


def emitter_code(settings: Settings, terminal: str) -> str:
    if terminal == CASABLANCA:
        return settings.marsa_maroc_emitter_code
    return f"611MARS{terminal}"


def emitter_name(terminal: str) -> str:
    return f"MARSAMAROC {terminal}"


def emitter_label(settings: Settings, terminal: str) -> str:
    """The guide's heading: "MARSAMAROC CASA Port: Casablanca"."""
    port = dict(settings.marsa_terminals()).get(terminal, terminal)
    return f"{emitter_name(terminal)} Port: {port}"


def ensure_terminal_emitter(session: Session, settings: Settings, terminal: str) -> Emitter:
    """The terminal's emitter, created if missing (concurrent creators end on one row)."""
    code = emitter_code(settings, terminal)
    found = session.exec(select(Emitter).where(Emitter.code == code)).first()
    if found is not None:
        return found
    emitter = Emitter(
        code=code,
        name=emitter_name(terminal),
        rc_centre=dict(settings.marsa_terminals()).get(terminal),
        address=EMITTER_ADDRESSES.get(terminal),
    )
    try:
        with session.begin_nested():
            session.add(emitter)
            session.flush()
    except IntegrityError:
        return session.exec(select(Emitter).where(Emitter.code == code)).one()
    return emitter


def ensure_terminal_emitters(session: Session, settings: Settings) -> int:
    """Every configured terminal's emitter; returns how many were created."""
    created = 0
    for terminal, _ in settings.marsa_terminals():
        before = session.exec(select(Emitter).where(Emitter.code == emitter_code(settings, terminal))).first()
        if before is None:
            ensure_terminal_emitter(session, settings, terminal)
            created += 1
    return created
