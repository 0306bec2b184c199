"""The portal's three languages: French (the guide's, the source text), Arabic and English.

Every sentence a person reads (pages, e-mails, PDFs, API errors) is a French msgid looked up in the
gettext catalogs of ``portnet/locale/<lang>/LC_MESSAGES/messages.po``. The language in force is a
context variable: the portal sets it per request (the user's profile, then the language cookie,
then ``Accept-Language``), an activity per payer (:func:`use_locale`), so the same ``gettext``
serves a page and an e-mail rendered side by side on one worker.

Catalogs: ``make setup`` compiles each ``.po`` into its ``.mo`` (``python -m portnet.i18n``); a
missing or older ``.mo`` is compiled in memory from the ``.po`` at first use, so a catalog edit can
never be shadowed by a stale binary. Amounts and dates follow each language's Moroccan conventions
through Babel (fr_MA ``5 284,80 MAD``, ar_MA ``5.284,80 MAD``, en ``5,284.80 MAD``), Decimal to the end.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel.dates import format_date as babel_format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
LANGUAGES = ("fr", "ar", "en")
DEFAULT_LANGUAGE = "fr"
RIGHT_TO_LEFT = frozenset({"ar"})
# The Babel locale each language formats numbers and dates with.
BABEL_LOCALES = {"fr": "fr_MA", "ar": "ar_MA", "en": "en"}
# Each language's own name, as the switch in the page header shows it.
LANGUAGE_NAMES = {"fr": "Français", "ar": "العربية", "en": "English"}
DATE_PATTERNS = {"fr": "dd/MM/yyyy", "ar": "dd/MM/yyyy", "en": "d MMM yyyy"}

_current: ContextVar[str] = ContextVar("portnet_language", default=DEFAULT_LANGUAGE)


def normalize(value: str | None) -> str | None:
    """``"ar-MA"``, ``"AR"``, ``"en_GB"`` -> the language we have, or None."""
    if not value:
        return None
    code = value.strip().replace("_", "-").split("-")[0].lower()
    return code if code in LANGUAGES else None


def negotiate(accept_language: str | None) -> str | None:
    """The first language of an ``Accept-Language`` header we speak, by the header's q-values."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        code = normalize(tag)
        if code is not None and quality > 0:
            ranked.append((-quality, index, code))
    return min(ranked)[2] if ranked else None


def current_language() -> str:
    return _current.get()


def is_rtl(language: str | None = None) -> bool:
    return (language or current_language()) in RIGHT_TO_LEFT


@contextmanager
def use_locale(language: str | None) -> Iterator[str]:
    """Everything translated or formatted inside reads ``language`` (French when unknown)."""
    chosen = normalize(language) or DEFAULT_LANGUAGE
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


def set_language(language: str | None) -> str:
    """For a request's whole handling (the portal's middleware): no reset needed, the context dies with it."""
    chosen = normalize(language) or DEFAULT_LANGUAGE
    _current.set(chosen)
    return chosen


# --------------------------------------------------------------------------------------- catalogs


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo"


def compile_catalog(language: str) -> bytes:
    """The ``.mo`` bytes of a language's ``.po`` (fuzzy entries left out, as msgfmt does)."""
    with po_path(language).open("rb") as po:
        catalog = read_po(po, locale=BABEL_LOCALES[language])
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


@cache
def translations(language: str) -> NullTranslations:
    po, mo = po_path(language), mo_path(language)
    if not po.exists():
        return NullTranslations()
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        data = mo.read_bytes()
    else:
        data = compile_catalog(language)
    return Translations(io.BytesIO(data), domain=DOMAIN)


def gettext(message: str) -> str:
    return translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_language()).ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention: marks a msgid for extraction only
    return message


_ = gettext


# ------------------------------------------------------------------------------------- formatting


def format_amount(value: Decimal, currency: str | None = "MAD", language: str | None = None) -> str:
    """``5 284,80 MAD`` / ``5.284,80 MAD`` / ``5,284.80 MAD``: Decimal in, never a float on the way."""
    from portnet.money import to_money

    lang = language or current_language()
    text = format_decimal(to_money(value), format="#,##0.00", locale=BABEL_LOCALES[lang])
    return f"{text} {currency}" if currency else text


def format_day(value: date | datetime, language: str | None = None) -> str:
    lang = language or current_language()
    return babel_format_date(value, DATE_PATTERNS[lang], locale=BABEL_LOCALES[lang])


def format_moment(value: datetime, language: str | None = None) -> str:
    """A date and its time (24 h everywhere: the port works round the clock)."""
    return f"{format_day(value, language)} {value.strftime('%H:%M')}"


def compile_all() -> list[Path]:
    """``make setup``: writes every ``.mo`` next to its ``.po``."""
    written = []
    for language in LANGUAGES:
        if po_path(language).exists():
            mo_path(language).write_bytes(compile_catalog(language))
            written.append(mo_path(language))
    translations.cache_clear()
    return written


if __name__ == "__main__":
    for path in compile_all():
        print(f"compiled {path}")
