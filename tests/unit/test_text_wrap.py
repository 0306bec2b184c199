"""The documents' one-pass word wrapping (portnet/documents/wrap.py) draws exactly what fpdf2's
``multi_cell`` draws: the same PDF, byte for byte, for the same text at the same place."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from portnet.documents.layout import OK_GREEN, PortnetPDF
from portnet.documents.wrap import WordWidths, wrap_words

ALPHABET = "abcdefghijklmnopqrstuvwxyzéèàçôÉ—«»'’;:,.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def drawn(texts: list[str], one_pass: bool) -> bytes:
    """Each text at its own font, size and width (the whole line when 0), as a block of lines."""
    pdf = PortnetPDF(doc_title="t", doc_ref="r", created=datetime(2026, 1, 1), subject="s", accent=OK_GREEN)
    pdf.add_page()
    for i, text in enumerate(texts):
        pdf.set_font("helvetica", "B" if i % 3 == 0 else "", 7 + i % 5)
        width = (0, 60, 35.5, 120)[i % 4]
        new_x = "LMARGIN" if i % 2 else "LEFT"
        if one_pass:
            pdf.text_block(width, 4.8, text, new_x=new_x)
        else:
            pdf.multi_cell(width, 4.8, text, align="L", new_x=new_x, new_y="NEXT")
    return bytes(pdf.output())


def random_text(rnd: random.Random) -> str:
    words = [
        "".join(rnd.choice(ALPHABET) for _ in range(rnd.choice((1, 2, 3, 5, 8, 12, 20)))) for _ in range(40)
    ]
    separators = [rnd.choice([" "] * 12 + ["  ", "\u00a0", "\t", "\u00ad"]) for _ in words]
    text = "".join(word + sep for word, sep in zip(words[: rnd.randint(0, 40)], separators, strict=False))
    return text.strip(" ") if rnd.random() < 0.6 else text


@pytest.mark.parametrize("seed", range(25))
def test_the_same_pdf_as_multi_cell_for_any_text(seed: int) -> None:
    """Words, accents, quotes, dashes, no-break spaces; and the texts left to ``multi_cell`` (runs
    of spaces, tabs, soft hyphens, a word wider than the line) still come out the same."""
    rnd = random.Random(seed)
    texts = [random_text(rnd) for _ in range(8)]
    assert drawn(texts, one_pass=True) == drawn(texts, one_pass=False)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Facture payée",
        "Le paiement n° PN1A2B3C4D5E6F a été confirmé le 01/12/2026 à 10:15 via CMI carte bancaire. "
        "Conservez ce reçu : il vous sera demandé pour toute réclamation relative à ce paiement.",
        "SOCIETE " * 30,
        "x" * 400,
        "deux lignes\nà elles",
    ],
)
def test_the_same_pdf_as_multi_cell_for_the_documents_texts(text: str) -> None:
    assert drawn([text] * 4, one_pass=True) == drawn([text] * 4, one_pass=False)


def test_words_are_put_on_lines_greedily_and_a_word_wider_than_a_line_is_left_to_fpdf2() -> None:
    def width(word: str) -> float:
        return float(len(word))

    assert wrap_words("aa bb cc dd", 5, width) == ["aa bb", "cc dd"]
    assert wrap_words("aa bb cc dd", 4.9, width) == ["aa", "bb", "cc", "dd"]
    assert wrap_words("aa bbbbbb", 5, width) is None
    assert wrap_words("aa  bb", 10, width) is None


def test_remembered_widths_are_measured_once_and_bounded() -> None:
    measured: list[str] = []

    def measure(word: str) -> float:
        measured.append(word)
        return float(len(word))

    widths = WordWidths(limit=3)
    font = ("helvetica", "", 9.0)
    assert [widths.width(font, w, measure) for w in ("ab", "ab", "abc")] == [2.0, 2.0, 3.0]
    assert measured == ["ab", "abc"]
    widths.width(("helvetica", "B", 9.0), "ab", measure)  # another font: measured again
    widths.width(font, "abcd", measure)  # full: starts over
    widths.width(font, "ab", measure)
    assert measured == ["ab", "abc", "ab", "abcd", "ab"]
