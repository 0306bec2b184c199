"""CMI's side of the HASH ver3 signature, written apart from ``portnet.protocols.cmi`` on purpose.

The sandbox plays the bank: if it shared our code, a mistake in our implementation would be
mirrored here and every test would still pass. Written from ../shared/partners.md alone, it lets
the tests check that both sides agree, which is what the real gateway will demand.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping

# Names left out of the signed text (compared case-insensitively).
UNSIGNED_FIELDS = frozenset({"hash", "encoding"})

_ASCII_DIGITS = frozenset("0123456789")


def _digit_run(text: str, start: int) -> int:
    end = start
    while end < len(text) and text[end] in _ASCII_DIGITS:
        end += 1
    return end


def natural_compare(left: str, right: str) -> int:
    """Three-way comparison where digit runs count as numbers, ignoring case.

    A character-by-character scan rather than a sort key, so that it is a genuinely different
    implementation from ours. A digit run sorts before any other character at the same position,
    and a name that is a prefix of another sorts first.
    """
    a, b = left.lower(), right.lower()
    i = j = 0
    while i < len(a) and j < len(b):
        a_digit, b_digit = a[i] in _ASCII_DIGITS, b[j] in _ASCII_DIGITS
        if a_digit and b_digit:
            i_end, j_end = _digit_run(a, i), _digit_run(b, j)
            number_a, number_b = int(a[i:i_end]), int(b[j:j_end])
            if number_a != number_b:
                return -1 if number_a < number_b else 1
            i, j = i_end, j_end
            continue
        if a_digit != b_digit:
            return -1 if a_digit else 1
        if a[i] != b[j]:
            return -1 if a[i] < b[j] else 1
        i += 1
        j += 1
    remaining_a, remaining_b = len(a) - i, len(b) - j
    return (remaining_a > remaining_b) - (remaining_a < remaining_b)


def sorted_names(names: Iterable[str]) -> list[str]:
    return sorted(names, key=functools.cmp_to_key(natural_compare))


def escape_value(value: str) -> str:
    # Backslashes first, otherwise the backslash added in front of `|` would be doubled too.
    return value.replace("\\", "\\\\").replace("|", "\\|")


def signed_text(fields: Mapping[str, str], store_key: str) -> str:
    """The exact string that is hashed; exposed so a failing test can show what differs."""
    names = sorted_names(name for name in fields if name.lower() not in UNSIGNED_FIELDS)
    parts = [escape_value(str(fields[name]).strip()) + "|" for name in names]
    # partners.md trims the values only; the store key is escaped as is.
    return "".join(parts) + escape_value(store_key)


def sign(fields: Mapping[str, str], store_key: str) -> str:
    digest = hashlib.sha512(signed_text(fields, store_key).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


def posted_hash(fields: Mapping[str, str]) -> str | None:
    for name, value in fields.items():
        if name.lower() == "hash":
            return value
    return None


def check(fields: Mapping[str, str], store_key: str) -> bool:
    """Constant-time check, so that response timing leaks nothing about the expected hash."""
    posted = posted_hash(fields)
    if not posted:
        return False
    expected = sign(fields, store_key)
    return hmac.compare_digest(posted.strip().encode("utf-8"), expected.encode("utf-8"))
