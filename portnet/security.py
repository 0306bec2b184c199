"""Passwords: argon2id hashes, generated passwords and the password policy.

Hashing goes through pwdlib with an explicit argon2id hasher (not ``PasswordHash.recommended()``) so
that a pwdlib upgrade that changes its recommendation cannot silently change the stored format;
changed *parameters* are still picked up through :func:`needs_rehash`.
"""

from __future__ import annotations

import secrets
import string

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

MIN_PASSWORD_LENGTH = 10
# argon2 accepts any length; the cap only stops a multi-megabyte "password" from burning CPU.
MAX_PASSWORD_LENGTH = 256
GENERATED_PASSWORD_LENGTH = 16

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


def password_problems(new: str, username: str) -> list[str]:
    """French messages for the change-password form; an empty list means the password is accepted."""
    problems: list[str] = []
    if len(new) < MIN_PASSWORD_LENGTH:
        problems.append(f"Le mot de passe doit contenir au moins {MIN_PASSWORD_LENGTH} caractères.")
    if len(new) > MAX_PASSWORD_LENGTH:
        problems.append(f"Le mot de passe ne doit pas dépasser {MAX_PASSWORD_LENGTH} caractères.")
    if not any(c.isalpha() for c in new):
        problems.append("Le mot de passe doit contenir au moins une lettre.")
    if not any(c.isdigit() for c in new):
        problems.append("Le mot de passe doit contenir au moins un chiffre.")
    if username and new.strip().casefold() == username.strip().casefold():
        problems.append("Le mot de passe ne doit pas être identique au nom d'utilisateur.")
    return problems
