"""Finds the sentences of a Jinja template that no gettext call wraps (tests/i18n).

The template is cut into Jinja constructs and HTML; what a person reads — text between tags, and the
``title``, ``placeholder``, ``aria-label`` and ``alt`` attributes — must come from ``_()`` unless it
is a proper name, a code or a number (``ALLOWED``). String literals inside ``{{ }}`` / ``{% %}`` that
read like French (a capital and a lowercase word, not compared with ``==``) count too.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
WORD = re.compile(r"[^\W\d_]{2,}")
READ_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
# Names, brands, codes and units that read the same in the three languages.
ALLOWED = frozenset(
    {
        "PORTNET",
        "PortNet",
        "MAD",
        "HelpDesk",
        "CMI",
        "PDF",
        "ANP",
        "MARSA",
        "MAROC",
        "MARSAMAROC",
        "Amanpay",
        "Amanty",
        "PayDirect",
        "Fatourati",
        "Tashilat",
        "Visa",
        "MasterCard",
        "SMS",
        "ID",
        "https",
        "http",
        "www",
        "portnet",
        "ma",
        "reclamation",
        "HASH",
        "Temporal",
        "UI",
        "CIN",
        "IFU",
        "RC",
        "OK",
        "AttijariNet",
        "BMCE",
        "CIH",
        "Barid",
        "Bank",
        "CashPlus",
        "DamanePay",
        "DamanCash",
    }
)
LITERAL = re.compile(
    r"""(?<![=!]=\s)(?<![=!]=)(?<!_\()(?<!in\s)(?:"([A-ZÀ-Ý][^"{}]*?)"|'([A-ZÀ-Ý][^'{}]*?)')"""
)
NOT_READ = re.compile(r"\{%-?\s*(extends|import|include|from|block)\b")
SENTINEL = "\x00"


CSS_CLASS = re.compile(r"\b[a-z0-9]+(?:[-_][a-z0-9]+)+\b")  # page-login, badge--paid


def reads_as_text(value: str) -> bool:
    text = CSS_CLASS.sub(" ", value.replace(SENTINEL, " "))
    return any(word not in ALLOWED for word in WORD.findall(text))


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._raw = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._raw += 1
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value and reads_as_text(value):
                self.found.append(f'{name}="{value.replace(SENTINEL, "{{…}}")}"')

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._raw = max(0, self._raw - 1)

    def handle_data(self, data: str) -> None:
        if not self._raw and reads_as_text(data):
            self.found.append(" ".join(data.replace(SENTINEL, " {{…}} ").split()))


def untranslated(source: str) -> list[str]:
    """The texts of ``source`` that reach a reader without passing through the catalogs."""
    found: list[str] = []
    for construct in JINJA.findall(source):
        if construct.startswith("{#") or NOT_READ.match(construct):
            continue
        for match in LITERAL.finditer(construct):
            literal = match.group(1) or match.group(2)
            code_like = literal.startswith("/") or re.fullmatch(r"[A-Z_]+", literal)
            if reads_as_text(literal) and not code_like:
                found.append(f"literal {literal!r} in {construct}")
    reader = _Reader()
    # A tag whose name is computed (``<{{ tag }} class="...">``) is a tag, not text.
    reader.feed(re.sub(f"</?{SENTINEL}[^>]*>", "", JINJA.sub(SENTINEL, source)))
    reader.close()
    return found + reader.found
