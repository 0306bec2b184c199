"""What text may reach a PDF page, and how values read on it.

Only fpdf2's built-in Helvetica is used: there is no font file to bundle or to find on a fresh CI
machine. Built-in fonts are single-byte, so every string is folded to Windows-1252 on its way in
(see :func:`pdf_safe_text`): French accents, ``œ``, ``€`` and typographic quotes survive, the narrow
no-break space that :func:`portnet.money.format_fr` puts between thousands becomes a plain space,
and anything else degrades to its closest unaccented form instead of crashing the rendering.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from decimal import Decimal

from portnet.i18n import N_
from portnet.money import format_fr

CURRENCY_LABELS = {"MAD": N_("Dirham (MAD)"), "EUR": N_("Euro (EUR)"), "USD": N_("Dollar US (USD)")}
FONT = "helvetica"
PDF_ENCODING = "cp1252"
DASH = "—"  # shown for a missing value, so an empty cell reads as "none", not as a rendering bug

_SPACES = dict.fromkeys(
    map(ord, "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"),
    " ",
)
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
_CLOSE_ASCII = {
    ord("\u2010"): "-",
    ord("\u2011"): "-",
    ord("\u2012"): "-",
    ord("\u2015"): "-",
    ord("\u2212"): "-",
    ord("\u201b"): "'",
    ord("\u201f"): '"',
    ord("\u2032"): "'",
    ord("\u2033"): '"',
    ord("\u2192"): "->",
    ord("\u2190"): "<-",
    ord("\u2264"): "<=",
    ord("\u2265"): ">=",
    ord("\u2260"): "!=",
    ord("\u2713"): "v",
    ord("\u2714"): "v",
    ord("\t"): " ",
}
_TRANSLATION = {**_SPACES, **_INVISIBLE, **_CLOSE_ASCII}
# Unicode's control characters (category Cc) but the line feed, which the slow path keeps too.
_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _encodable(ch: str) -> bool:
    try:
        ch.encode(PDF_ENCODING)
    except UnicodeEncodeError:
        return False
    return True


def pdf_safe_text(text: str) -> str:
    """Folds any text into what Helvetica can draw, so a stray character never aborts a document.

    Composed first (a decomposed ``é`` is still ``é``), then known look-alikes are mapped, then an
    unsupported letter loses its accent (``ş`` -> ``s``), and only what is left becomes ``?``.
    """
    text = unicodedata.normalize("NFC", text).translate(_TRANSLATION)
    try:
        text.encode(PDF_ENCODING)
    except UnicodeEncodeError:
        pass
    else:  # the common case, every character drawable: only control characters to drop
        return _CONTROLS.sub("", text)
    out: list[str] = []
    for ch in text:
        if ch == "\n":
            out.append(ch)
        elif unicodedata.category(ch) == "Cc":
            continue
        elif _encodable(ch):
            out.append(ch)
        else:
            folded = "".join(
                c
                for c in unicodedata.normalize("NFKD", ch)
                if not unicodedata.combining(c) and _encodable(c) and unicodedata.category(c) != "Cc"
            )
            out.append(folded or "?")
    return "".join(out)


_PAN_SEPARATORS = re.compile(r"[\s\-.]")
_DIGITS = frozenset("0123456789")


def mask_card_number(value: str) -> str:
    """Keeps at most the first 6 and last 4 digits (PCI DSS), whatever the partner sent us.

    Applied even to numbers that arrive masked, so a partner that forgets to mask, or masks
    differently, still cannot put a full PAN on a receipt we issue.
    """
    compact = _PAN_SEPARATORS.sub("", value)

    def keep(part: str) -> str:
        return "".join(c if c in _DIGITS else "*" for c in part)

    if len(compact) >= 13:  # PAN length range is 13 to 19
        masked = keep(compact[:6]) + "*" * (len(compact) - 10) + keep(compact[-4:])
    elif len(compact) > 4:
        masked = "*" * (len(compact) - 4) + keep(compact[-4:])
    else:
        masked = "****"
    assert not re.search(r"\d{11,}", masked), "a card number escaped masking"
    return masked


def format_date(value: datetime | None) -> str:
    return value.strftime("%d/%m/%Y") if value else DASH


def format_money(value: Decimal, currency: str) -> str:
    return format_fr(value, currency)


def currency_label(code: str) -> str:
    return CURRENCY_LABELS.get(code.upper(), code)


def or_dash(value: str | None) -> str:
    return value if value and value.strip() else DASH
