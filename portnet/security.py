"""Passwords: argon2id hashes, generated passwords and the password policy (OWASP ASVS 5).

Hashing goes through pwdlib with an explicit argon2id hasher (not ``PasswordHash.recommended()``) so
that a pwdlib upgrade that changes its recommendation cannot silently change the stored format;
changed *parameters* are still picked up through :func:`needs_rehash`.
"""

from __future__ import annotations

import secrets
import string
from pathlib import Path

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

# OWASP ASVS 5: at least 12 characters (V6.2.1) and at least 64 allowed (V6.2.9). argon2 takes any
# length; the cap only stops a huge "password" from burning CPU. No composition rule (V6.2.5).
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
GENERATED_PASSWORD_LENGTH = 16

COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")
# Words of this service and its partners (ASVS V6.2.11): "Portnet2026!" is the demo password.
CONTEXT_WORDS = frozenset(
    {
        "portnet", "port net", "portnet paiements", "paiement", "paiements", "guichet", "guichet unique",
        "anp", "marsa", "marsamaroc", "marsa maroc", "cmi", "fatourati", "amanpay", "amanty", "tashilat",
        "paydirect", "sandbox", "demo", "admin", "administrateur", "finance", "douane", "casablanca",
        "motdepasse", "mot de passe",
    }
)  # fmt: skip
# Runs people type without thinking ("123456789012", "azertyuiopqs"), read both ways, wrapping round.
_RUNS = (
    "0123456789",
    "abcdefghijklmnopqrstuvwxyz",
    "azertyuiopqsdfghjklmwxcvbn",
    "qwertyuiopasdfghjklzxcvbnm",
)
# Letters people swap for look-alike digits and symbols ("P@ssw0rd").
_UNLEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)

# Generated passwords are read off a terminal and typed by a person: no look-alike characters
# (0/O, 1/l/I) and only symbols that survive copy-paste, shells and e-mail.
_LETTERS = "".join(c for c in string.ascii_letters if c not in "OlI")
_DIGITS = "23456789"
_SYMBOLS = "!#%+-=?@_"

_password_hash = PasswordHash((Argon2Hasher(),))


def hash_password(password: str) -> str:
    return _password_hash.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Never raises: a corrupt or foreign hash in the table must read as "wrong password", not a 500."""
    if not password_hash or not isinstance(password, str):
        return False
    try:
        return bool(_password_hash.verify(password, password_hash))
    except Exception:
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the stored hash was made with other parameters (or is not ours at all).

    Call it after a successful login and store ``hash_password(password)`` if so: the plain password
    is only available at that moment.
    """
    hasher = _password_hash.current_hasher
    try:
        if not hasher.identify(password_hash):
            return True
        return bool(hasher.check_needs_rehash(password_hash))
    except Exception:
        return True


def generate_password(length: int = GENERATED_PASSWORD_LENGTH) -> str:
    """A random password that passes :func:`password_problems` for any username.

    One letter, one digit and one symbol are guaranteed, then the positions are shuffled so the
    classes do not sit at predictable places.
    """
    if length < 14:
        raise ValueError("generated passwords are at least 14 characters long")
    alphabet = _LETTERS + _DIGITS + _SYMBOLS
    chars = [
        secrets.choice(string.ascii_lowercase),
        secrets.choice("ABCDEFGHJKMNPQRSTUVWXYZ"),
        secrets.choice(_DIGITS),
        secrets.choice(_SYMBOLS),
    ]
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def _load_common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


_common_passwords: frozenset[str] | None = None


def common_passwords() -> frozenset[str]:
    """Loaded on first use (a few thousand words, ~50 kB), then kept."""
    global _common_passwords
    if _common_passwords is None:
        _common_passwords = _load_common_passwords()
    return _common_passwords


def _core(password: str) -> str:
    """The password without the digits and symbols people pad a word with ("Soleil2026!" -> "soleil")."""
    folded = password.casefold()
    start, end = 0, len(folded)
    while start < end and not folded[start].isalpha():
        start += 1
    while end > start and not folded[end - 1].isalpha():
        end -= 1
    return folded[start:end]


def _guessable_forms(password: str) -> set[str]:
    folded = password.casefold()
    core = _core(password)
    return {folded, core, folded.translate(_UNLEET), core.translate(_UNLEET)} - {""}


def _is_run_or_repetition(password: str) -> bool:
    folded = password.casefold()
    if len(set(folded)) <= 3:
        return True
    for run in _RUNS:
        cycled = run * (len(folded) // len(run) + 2)
        if folded in cycled or folded in cycled[::-1]:
            return True
    return False


def password_problems(new: str, username: str) -> list[str]:
    """French messages for the change-password form; an empty list means the password is accepted.

    OWASP ASVS 5 (V6.2): at least 12 characters, any characters (spaces and accents included), no
    composition rule; refused when it is a common password, a common word or a word of this service
    padded with digits and symbols (the demo accounts' "Portnet2026!" shape), or the user name.
    """
    problems: list[str] = []
    if len(new) < MIN_PASSWORD_LENGTH:
        problems.append(f"Le mot de passe doit contenir au moins {MIN_PASSWORD_LENGTH} caractères.")
    if len(new) > MAX_PASSWORD_LENGTH:
        problems.append(f"Le mot de passe ne doit pas dépasser {MAX_PASSWORD_LENGTH} caractères.")
        return problems  # nothing more is looked at in an oversized input
    name = username.strip().casefold()
    forms = _guessable_forms(new)
    if name and (name in forms or (len(name) >= 4 and name in new.casefold())):
        problems.append("Le mot de passe ne doit pas contenir le nom d'utilisateur.")
    elif _is_run_or_repetition(new):
        problems.append("Le mot de passe ne doit pas être une suite ou une répétition de caractères.")
    elif forms & common_passwords():
        problems.append(
            "Ce mot de passe est trop courant (il figure dans les listes de mots de passe les plus "
            "utilisés) : choisissez-en un autre, par exemple une phrase de plusieurs mots."
        )
    elif forms & CONTEXT_WORDS:
        problems.append(
            "Le mot de passe ne doit pas être un mot du service (PortNet, Amanpay...) complété de "
            "chiffres ou de symboles."
        )
    return problems
