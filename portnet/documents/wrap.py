"""Word wrapping for left-to-right text in one pass, as fpdf2's ``multi_cell`` wraps it.

fpdf2's line breaker adds a line's characters one at a time and measures the whole line again after
each, so a paragraph costs the square of its line length: the receipt's two paragraphs were a third
of its layout, and a receipt is laid out for every settled payment. Here each word is measured once
(and remembered: the documents' sentences come back payment after payment), then the words are put
on lines greedily, breaking at spaces where ``multi_cell`` breaks them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Measure = Callable[[str], float]
UNPLAIN = ("\n", "\r", "\t", "\u00ad")
# A line this close to its room is left to fpdf2, which measures the whole line with a tolerance.
CLOSE = 1e-6
# Family, style, size in points, stretching, character spacing, points per unit: what a width depends on.
Font = tuple[str, str, float, float, float, float]


def wrap_words(text: str, room: float, measure: Measure) -> list[str] | None:
    """The lines of ``text`` within ``room``; None, for ``multi_cell`` to lay it out, when a word
    alone is wider than a line (fpdf2 cuts the word) or the text is not words separated by single
    spaces (line breaks, tabs, soft hyphens, runs of spaces: fpdf2 has rules of its own for them)."""
    if text != text.strip(" ") or "  " in text or any(mark in text for mark in UNPLAIN):
        return None
    space = measure(" ")
    lines: list[str] = []
    words: list[str] = []
    width = 0.0
    for word in text.split(" "):
        word_width = measure(word)
        wider = width + space + word_width if words else word_width
        if abs(wider - room) < CLOSE:
            return None  # a sum of widths may round either side of fpdf2's measure of the line
        if word_width > room:
            return None
        if words and wider > room:
            lines.append(" ".join(words))
            words, width = [word], word_width
        else:
            width = wider
            words.append(word)
    lines.append(" ".join(words))
    return lines


class WordWidths:
    """Words' widths per font, kept for the process: the documents' sentences are the same from one
    payment to the next. Bounded (names, numbers and dates are new every time): full, it starts
    over. Shared by the activities' threads, hence the lock around its changes."""

    def __init__(self, limit: int = 20_000) -> None:
        self._widths: dict[tuple[Font, str], float] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def width(self, font: Font, word: str, measure: Measure) -> float:
        known = self._widths.get((font, word))
        if known is not None:
            return known
        width = measure(word)
        with self._lock:
            if len(self._widths) >= self._limit:
                self._widths.clear()
            self._widths[(font, word)] = width
        return width
