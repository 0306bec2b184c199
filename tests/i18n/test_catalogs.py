"""The message catalogs: no template sentence outside them, and Arabic and English complete.

``make test`` runs this module: a new French sentence in a template, an e-mail or the Python code
(marked with ``_()``/``N_()``) without its Arabic and English translation fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from portnet import i18n
from tests.support.untranslated import untranslated

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(
    [*(ROOT / "web" / "templates").rglob("*.html"), *(ROOT / "activities" / "mail_templates").glob("*")]
)
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|\{[a-z_]+\}")
TAG = re.compile(r"</?[a-z]+>")


def extracted_msgids() -> set[str]:
    """What ``pybabel extract -F babel.cfg`` finds, read from the same mapping file."""
    from babel.messages.frontend import parse_mapping_cfg

    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
    found: set[str] = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.fixture(scope="module")
def msgids() -> set[str]:
    return extracted_msgids()


def catalog(language: str) -> dict[str, str]:
    with i18n.po_path(language).open("rb") as po:
        entries = read_po(po, locale=i18n.BABEL_LOCALES[language])
    return {m.id: m.string for m in entries if m.id and "fuzzy" not in m.flags}  # type: ignore[misc]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_sentence_outside_the_catalogs(template: Path) -> None:
    assert untranslated(template.read_text(encoding="utf-8")) == []


def test_the_template_check_finds_french_outside_gettext() -> None:
    source = (
        '{% block title %}Suivi{% endblock %}<h1>Régler des factures</h1><p>{{ _("Bien") }}</p>'
        '<a title="Télécharger la facture">{{ ui.field("Montant TTC", x) }}</a><td>00069321</td>'
        "<td>PORTNET</td><script>var x = 'Pas du texte';</script>"
    )
    found = untranslated(source)
    assert "{{…}} Suivi {{…}}" in found and "Régler des factures" in found
    assert 'title="Télécharger la facture"' in found
    assert any("'Montant TTC'" in f for f in found)
    assert len(found) == 4  # the number, the brand and the script are not sentences


@pytest.mark.parametrize("language", ["ar", "en"])
def test_every_sentence_is_translated(language: str, msgids: set[str]) -> None:
    translated = catalog(language)
    missing = sorted(m for m in msgids if not translated.get(m))
    assert missing == [], f"{len(missing)} sentences without a {language} translation: {missing[:20]}"


@pytest.mark.parametrize("language", ["ar", "en"])
def test_translations_keep_placeholders_and_markup(language: str, msgids: set[str]) -> None:
    translated = catalog(language)
    for msgid in msgids:
        text = translated.get(msgid, "")
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(msgid)), (msgid, text)
        assert TAG.findall(text) == TAG.findall(msgid), (msgid, text)


def test_the_catalogs_hold_nothing_extracted_no_more(msgids: set[str]) -> None:
    """A sentence removed from the code leaves the catalogs too (`pybabel update` drops it)."""
    for language in i18n.LANGUAGES:
        stale = set(catalog(language)) - msgids
        assert stale == set(), f"{language}: {sorted(stale)[:10]}"


@pytest.mark.parametrize("language", ["ar", "en"])
def test_the_compiled_catalog_is_the_po(language: str) -> None:
    """What the portal reads (a compiled .mo, or the .po compiled at first use) says what the .po says."""
    i18n.translations.cache_clear()
    loaded = i18n.translations(language)
    for msgid, text in catalog(language).items():
        assert loaded.gettext(msgid) == (text or msgid)


def test_amounts_and_dates_follow_each_locale() -> None:
    from datetime import datetime
    from decimal import Decimal

    amount, when = Decimal("5284.80"), datetime(2026, 11, 30, 14, 7)
    assert i18n.format_amount(amount, "MAD", "fr") == "5\u202f284,80 MAD"
    assert i18n.format_amount(amount, "MAD", "ar") == "5.284,80 MAD"
    assert i18n.format_amount(amount, "MAD", "en") == "5,284.80 MAD"
    assert i18n.format_amount(Decimal("0.005"), None, "en") == "0.01"  # half up, as the ledger rounds
    with pytest.raises(TypeError):
        i18n.format_amount(1.5, "MAD", "en")  # type: ignore[arg-type]
    assert i18n.format_moment(when, "fr") == "30/11/2026 14:07"
    assert i18n.format_moment(when, "en") == "30 Nov 2026 14:07"
    assert i18n.format_day(when, "ar") == "30/11/2026"


def test_the_browser_language_is_negotiated() -> None:
    assert i18n.negotiate("ar-MA,ar;q=0.9,fr;q=0.8") == "ar"
    assert i18n.negotiate("de-DE,en;q=0.5,fr;q=0.7") == "fr"
    assert i18n.negotiate("en-GB") == "en"
    assert i18n.negotiate("de, es;q=0.5") is None
    assert i18n.negotiate("fr;q=0, en;q=0.1") == "en"
    assert i18n.negotiate(None) is None


# workflows/details.py writes the Temporal Web UI's summaries: finance's tool, in French by design.
PROCESS_MODULES = [
    *sorted(p for p in (ROOT / "workflows").rglob("*.py") if p.name != "details.py"),
    *(
        ROOT / "activities" / f"{name}.py"
        for name in ("ledger", "unapplied", "marsa_maroc", "amanpay", "paydirect", "fatourati", "cmi_card")
    ),
]


@pytest.mark.parametrize("module", PROCESS_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_sentences_of_the_workflows_are_in_the_catalogs(module: Path) -> None:
    """A refusal or an ending the workflow writes reaches the payer's page: it must have its msgid."""
    from portnet.process_sentences import SENTENCES
    from tests.support.sentences import french_sentences

    assert french_sentences(module) - set(SENTENCES) == set()
