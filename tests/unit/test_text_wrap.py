"""The documents' one-pass word wrapping (portnet/documents/wrap.py) draws exactly what fpdf2's
``multi_cell`` draws: the same PDF, byte for byte, for the same text at the same place."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from portnet.documents.layout import OK_GREEN, PortnetPDF
from portnet.documents.wrap import WordWidths, wrap_words

# Accents, quotes and dashes Helvetica draws, and letters pdf_safe_text folds (ş -> s, ğ -> g).
ALPHABET = "abcdefghijklmnopqrstuvwxyzéèàçôÉ—«»'’;:,.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZşğ"


def document() -> PortnetPDF:
    pdf = PortnetPDF(doc_title="t", doc_ref="r", created=datetime(2026, 1, 1), subject="s", accent=OK_GREEN)
    pdf.add_page()
    return pdf


def drawn(texts: list[str], one_pass: bool) -> bytes:
    """Each text at its own font, size, width (the whole line when 0) and place, then the next one
    where the block left x: at its own left (LEFT) or at the margin (LMARGIN)."""
    pdf = document()
    for i, text in enumerate(texts):
        pdf.set_font("helvetica", "B" if i % 2 else "", 7 + (i // 2) % 5)  # both styles at each size
        width = (0, 60, 35.5, 120)[i % 4]
        new_x = "LMARGIN" if i % 3 == 0 else "LEFT"
        pdf.set_x(pdf.get_x() + (0, 12.5, 30)[i % 3])
        if one_pass:
            pdf.text_block(width, 4.8, text, new_x=new_x)
        else:
            pdf.multi_cell(width, 4.8, text, align="L", new_x=new_x, new_y="NEXT")
    return bytes(pdf.output())


def random_text(rnd: random.Random) -> str:
    words = [
        "".join(rnd.choice(ALPHABET) for _ in range(rnd.choice((1, 2, 3, 5, 8, 12, 20)))) for _ in range(40)
    ]
    separators = [rnd.choice([" "] * 60 + ["  ", "\u00a0", "\t", "\u00ad"]) for _ in words]
    text = "".join(word + sep for word, sep in zip(words[: rnd.randint(0, 40)], separators, strict=False))
    return text.strip(" ") if rnd.random() < 0.8 else text


@pytest.mark.parametrize("seed", range(25))
def test_the_same_pdf_as_multi_cell_for_any_text(seed: int) -> None:
    """Words, accents, quotes, dashes, no-break spaces, letters Helvetica lacks; and the texts left
    to ``multi_cell`` (runs of spaces, tabs, soft hyphens, a word wider than the line) still come
    out the same."""
    rnd = random.Random(seed)
    texts = [random_text(rnd) for _ in range(12)]
    assert drawn(texts, one_pass=True) == drawn(texts, one_pass=False)


def test_a_line_exactly_as_wide_as_its_room_stays_whole() -> None:
    """A box made as wide as its text (fpdf2 measures the line with a tolerance, a sum of word
    widths may round above it)."""
    for text in ("Paiement confirmé", "Reçu de paiement REC-PN3F9A1C0B7E21", "Total payé 763,01 MAD"):
        for size in (8, 8.5, 9, 10):
            pages = []
            for one_pass in (True, False):
                pdf = document()
                pdf.set_font("helvetica", "", size)
                width = pdf.get_string_width(text) + 2 * pdf.c_margin
                if one_pass:
                    pdf.text_block(width, 4.8, text)
                else:
                    pdf.multi_cell(width, 4.8, text, align="L", new_x="LEFT", new_y="NEXT")
                pages.append(bytes(pdf.output()))
            assert pages[0] == pages[1], (text, size)


def test_widths_remembered_for_one_document_are_not_used_for_another_stretching() -> None:
    text = "Conservez ce reçu : il vous sera demandé pour toute réclamation relative à ce paiement. " * 3
    drawn([text.strip()], one_pass=True)  # remembered at 100 %
    pages = []
    for one_pass in (True, False):
        pdf = document()
        pdf.set_font("helvetica", "", 9)
        pdf.set_stretching(70)
        if one_pass:
            pdf.text_block(80, 4.8, text.strip())
        else:
            pdf.multi_cell(80, 4.8, text.strip(), align="L", new_x="LEFT", new_y="NEXT")
        pages.append(bytes(pdf.output()))
    assert pages[0] == pages[1]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Facture payée",
        "Le paiement n° PN1A2B3C4D5E6F a été confirmé le 01/12/2026 à 10:15 via CMI carte bancaire. "
        "Conservez ce reçu : il vous sera demandé pour toute réclamation relative à ce paiement.",
        "SOCIETE " * 30,
        ("SOCIETE " * 30).strip(),
        "x" * 400,
        "deux lignes\nà elles",
    ],
)
def test_the_same_pdf_as_multi_cell_for_the_documents_texts(text: str) -> None:
    assert drawn([text] * 4, one_pass=True) == drawn([text] * 4, one_pass=False)


def test_words_are_put_on_lines_greedily_and_a_word_wider_than_a_line_is_left_to_fpdf2() -> None:
    def width(word: str) -> float:
        return float(len(word))

    assert wrap_words("aa bb cc dd", 5.5, width) == ["aa bb", "cc dd"]
    assert wrap_words("aa bb cc dd", 4.9, width) == ["aa", "bb", "cc", "dd"]
    assert wrap_words("aa bb cc dd", 5, width) is None  # a line exactly full: fpdf2's call
    assert wrap_words("aa bbbbbb", 5.5, width) is None
    assert wrap_words("aa  bb", 10, width) is None


def test_remembered_widths_are_measured_once_and_bounded() -> None:
    measured: list[str] = []

    def measure(word: str) -> float:
        measured.append(word)
        return float(len(word))

    widths = WordWidths(limit=3)
    font = ("helvetica", "", 9.0, 100.0, 0.0, 72 / 25.4)
    assert [widths.width(font, w, measure) for w in ("ab", "ab", "abc")] == [2.0, 2.0, 3.0]
    assert measured == ["ab", "abc"]
    widths.width(
        ("helvetica", "B", 9.0, 100.0, 0.0, 72 / 25.4), "ab", measure
    )  # another font: measured again
    widths.width(font, "abcd", measure)  # full: starts over
    widths.width(font, "ab", measure)
    assert measured == ["ab", "abc", "ab", "abcd", "ab"]
