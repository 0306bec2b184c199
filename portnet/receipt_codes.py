"""Receipt verification codes: what the QR code and the short code on a receipt carry.

A receipt is shown at terminal gates, to customs brokers' clients and to auditors. Each one carries a
code that leads to the public page ``/verification/<code>`` (web/verification.py), which shows what
the receipt proves, read from the ledger now.

**Why an HMAC-derived code, stored hashed.** The code is ``HMAC-SHA256(SECRET_KEY,
"RECEIPT_VERIFICATION" + newline + payment id)`` cut to its first 140 bits, written in Crockford's
base32 (28 characters, grouped by 4: ``7KQ3-...``; no I, L, O or U, so what is typed back is read
back, ``O`` as ``0`` and ``I``/``L`` as ``1``). 140 bits cannot be guessed, and a changed character
gives a code no receipt has.

- Derived, not drawn at random: every part that prints the code (the receipt PDF, wherever it is
  rendered; the confirmation e-mail, sent later by another activity) computes it again from the
  payment id. Nothing has to carry the code from the settlement to them: not the workflow history,
  not a column in clear.
- Stored as its SHA-256 only (``payment.receipt_code_hash``, unique), written when the receipt is
  issued: the page finds the receipt with one indexed look-up, and a copy of the database (a backup,
  a replica, a reporting account) gives nobody a working code: that needs SECRET_KEY.
- Looked up, not re-verified: a receipt issued before SECRET_KEY is rotated keeps verifying (its
  hash is in the ledger). After a rotation a code is derived afresh only for receipts issued after
  it; the e-mail prints a code only when it matches the stored hash (``code_for_payment``).

The label first, as every signature of ours (README "Partner signatures"), keeps this HMAC from ever
equalling another use of the same key.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io

import segno

LABEL = "RECEIPT_VERIFICATION"
# Crockford's base32: digits and letters without I, L, O, U.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_BITS = 140
CODE_LENGTH = CODE_BITS // 5  # 28 characters
GROUP = 4
# What a person may type for a letter Crockford leaves out.
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
# Separators a person (or a mail client) may put in a code; they carry nothing.
_SEPARATORS = str.maketrans("", "", "- \t\u00a0\u202f")
# Longer than any grouped code, however it was typed: the rest is not read.
MAX_TYPED = 64
VERIFICATION_PATH = "/verification"


def receipt_code(payment_id: str, secret_key: str) -> str:
    """The receipt's code, 28 characters, compact (``format_code`` groups it for people)."""
    mac = hmac.new(secret_key.encode(), f"{LABEL}\n{payment_id}".encode(), hashlib.sha256).digest()
    value = int.from_bytes(mac, "big") >> (len(mac) * 8 - CODE_BITS)
    chars = []
    for _ in range(CODE_LENGTH):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def format_code(code: str) -> str:
    """``XXXX-XXXX-...``: seven groups of four, as printed and as in the QR's URL."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def normalize(typed: str) -> str | None:
    """The compact code a person or a scanner gave, or None when it cannot be a code at all."""
    compact = typed[:MAX_TYPED].translate(_SEPARATORS).upper().translate(_READ_AS)
    if len(compact) != CODE_LENGTH or any(ch not in ALPHABET for ch in compact):
        return None
    return compact


def code_hash(code: str) -> str:
    """What the ledger keeps of a (compact) code."""
    return hashlib.sha256(f"{LABEL}\n{code}".encode()).hexdigest()


def lookup_hash(typed: str) -> str:
    """The hash to look up for whatever was typed.

    A malformed code is hashed too (it then matches nothing), so every refusal takes the same path
    and the same time as an unknown well-formed code: forged, altered and unknown codes look alike.
    """
    compact = normalize(typed)
    return code_hash(compact if compact is not None else "!" + typed[:MAX_TYPED])


def verification_url(public_base_url: str, code: str) -> str:
    return f"{public_base_url.rstrip('/')}{VERIFICATION_PATH}/{format_code(code)}"


def verification_page(public_base_url: str) -> str:
    """Where a person types the code by hand."""
    return f"{public_base_url.rstrip('/')}{VERIFICATION_PATH}"


@functools.lru_cache(maxsize=256)
def qr_code(url: str) -> segno.QRCode:
    """The QR code of ``url`` (error correction M), encoded once for the receipt and its e-mail.

    Encoding is most of a receipt's QR cost (segno scores the eight masks in Python, a few ms each
    time), and the settlement's PDF and the confirmation e-mail, moments later in the same worker,
    carry the same URL. Read only: callers draw or save it, never change it.
    """
    return segno.make_qr(url, error="m", boost_error=False)


def qr_png(url: str, scale: int = 4) -> bytes:
    """The QR code of ``url`` as a PNG (the e-mail's inline image; the PDF draws its own)."""
    out = io.BytesIO()
    qr_code(url).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
