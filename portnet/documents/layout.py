"""The PORTNET page every document is drawn on, and the blocks documents are built from.

An A4 page with the PORTNET band on top and the help-desk footer at the bottom; party boxes,
label/value grids, totals and tables in one palette, so an invoice and a receipt look like one family.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from fpdf import FPDF, FontFace
from fpdf.enums import TableBordersLayout
from fpdf.util import Padding

from portnet import i18n
from portnet.documents.text import FONT, PDF_ENCODING, pdf_safe_text
from portnet.documents.wrap import WordWidths, wrap_words
from portnet.i18n import N_
from portnet.i18n import gettext as _

_T = TypeVar("_T")
log = logging.getLogger("portnet.documents")
AUTHOR = "PORTNET S.A."
TAGLINE = N_("Guichet Unique National des Procédures du Commerce Extérieur")
# Arabic needs a TrueType face with Arabic glyphs, shaped by HarfBuzz (uharfbuzz): DejaVu Sans, from
# Debian's fonts-dejavu-core (or the folder PORTNET_PDF_FONT_DIR names).
UNICODE_FAMILY = "dejavu"
UNICODE_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts")
HELPDESK_PHONE = "05 20 47 31 00"
RECLAMATION_URL = "http://reclamation.portnet.ma"

# Palette: one brand colour, one tint for label cells, greys for the rest.
NAVY = (0, 51, 102)
TINT = (229, 236, 244)
RULE = (160, 170, 185)
MUTED = (95, 95, 95)
OK_GREEN = (25, 120, 60)
ORANGE = (242, 146, 0)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
# The label/value grid: column shares of the page width, text size, line height, padding (y, x).
GRID_COLUMNS = (22, 28, 22, 28)
GRID_FONT_SIZE = 8.5
GRID_LINE = 5.0
GRID_PADDING = (1.2, 2.0)
WORD_WIDTHS = WordWidths()


def clip(value: str, limit: int = 240) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def as_utc(value: datetime) -> datetime:
    # fpdf2 reads a naive datetime as *machine-local* time, which would make the bytes depend on the
    # host's TZ; the ledger's naive timestamps are UTC, so say so.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def unicode_font_dir() -> Path:
    """Where DejaVu Sans is; a clear error rather than a receipt in the wrong script."""
    candidates = [os.environ.get("PORTNET_PDF_FONT_DIR", ""), *FONT_DIRS]
    for folder in filter(None, candidates):
        if all((Path(folder) / name).is_file() for name in UNICODE_FONT_FILES.values()):
            return Path(folder)
    raise RuntimeError(
        "Arabic PDFs need DejaVu Sans (apt-get install fonts-dejavu-core, or set PORTNET_PDF_FONT_DIR)"
    )


def drawable_language(language: str) -> str:
    """The language a document can be drawn in here: an Arabic one needs DejaVu Sans, and a missing
    font must not stop a settlement, so the document is then drawn in French (and the fault logged)."""
    if not i18n.is_rtl(i18n.normalize(language) or i18n.DEFAULT_LANGUAGE):
        return language
    try:
        unicode_font_dir()
    except RuntimeError as missing:
        log.error("%s: document drawn in French instead of %s", missing, language)
        return i18n.DEFAULT_LANGUAGE
    return language


class PortnetPDF(FPDF):
    """A4 page with the PORTNET band on top and the help-desk footer at the bottom of every page.

    Drawn in the language in force (portnet/i18n.py): French and English with the built-in Helvetica,
    Arabic right to left with DejaVu Sans and HarfBuzz shaping.
    """

    def __init__(
        self,
        *,
        doc_title: str,
        doc_ref: str,
        created: datetime,
        subject: str,
        accent: tuple[int, int, int],
    ) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.core_fonts_encoding = PDF_ENCODING
        self.language = i18n.current_language()
        self.rtl = i18n.is_rtl(self.language)
        self.start = "R" if self.rtl else "L"  # where a line of text begins
        self.end = "L" if self.rtl else "R"
        if self.rtl:
            folder = unicode_font_dir()
            for style, name in UNICODE_FONT_FILES.items():
                self.add_font(UNICODE_FAMILY, style, str(folder / name))
            self.set_text_shaping(use_shaping_engine=True, direction="rtl", script="arab", language="ara")
        self.doc_title = doc_title
        self.doc_ref = doc_ref
        self.accent = accent
        self.set_margins(15, 42, 15)
        self.set_auto_page_break(auto=True, margin=24)
        self.set_title(f"{doc_title} {doc_ref}")
        self.set_author(AUTHOR)
        self.set_creator("PortNet Payments")
        self.set_subject(subject)
        self.set_lang({"fr": "fr-MA", "ar": "ar-MA", "en": "en"}[self.language])
        self.set_creation_date(as_utc(created))
        self.set_draw_color(*RULE)
        self.set_line_width(0.2)

    def set_font(self, family: str | None = None, style: str = "", size: float = 0) -> None:  # type: ignore[override]
        # Every block asks for Helvetica; an Arabic document draws it with the Unicode face instead.
        if self.rtl and family is not None and family.lower() in (FONT, "courier"):
            family = UNICODE_FAMILY
        super().set_font(family, style, size)  # type: ignore[arg-type]

    def normalize_text(self, text: str) -> str:
        # The one door all drawn text goes through: folding here means no call site can forget to.
        # The Unicode face draws any text as is (Arabic); Helvetica only what Windows-1252 holds.
        return super().normalize_text(text if self.rtl else pdf_safe_text(text))

    def header(self) -> None:
        self.set_fill_color(*NAVY)
        self.rect(0, 0, self.w, 30, style="F")
        self.set_fill_color(*self.accent)
        self.rect(0, 30, self.w, 1.2, style="F")
        self.set_text_color(*WHITE)
        self.set_xy(15, 7)
        self.set_font(FONT, "B", 24)
        self.cell(90, 10, "PORTNET")
        self.set_xy(15, 18)
        self.set_font(FONT, "", 8.5)
        self.cell(110, 5, _(TAGLINE))
        self.set_xy(110, 8)
        self.set_font(FONT, "B", 16)
        self.cell(85, 9, self.doc_title, align="R")
        self.set_xy(110, 18)
        self.set_font(FONT, "", 10)
        self.cell(85, 5, _("N° %(reference)s") % {"reference": self.doc_ref}, align="R")
        self.set_text_color(*BLACK)
        self.set_y(40)

    def footer(self) -> None:
        self.set_y(-18)
        self.set_draw_color(*RULE)
        self.line(15, self.get_y(), self.w - 15, self.get_y())
        self.ln(2)
        self.set_font(FONT, "B", 8)
        self.set_text_color(*NAVY)
        self.cell(0, 4, AUTHOR, align="C", new_x="LMARGIN", new_y="NEXT")
        self.set_font(FONT, "", 8)
        self.set_text_color(*MUTED)
        contacts = {"phone": HELPDESK_PHONE, "url": RECLAMATION_URL}
        self.cell(0, 4, _("HelpDesk : %(phone)s  ·  Réclamations : %(url)s") % contacts, align="C")
        self.set_x(15)
        page = {"page": self.page_no(), "pages": "{nb}"}
        self.cell(0, 4, _("Page %(page)s/%(pages)s") % page, align=self.end)
        self.set_text_color(*BLACK)

    # -- building blocks

    def section_title(self, text: str) -> None:
        if self.will_page_break(16):
            self.add_page()
        self.ln(3)
        self.set_font(FONT, "B", 10.5)
        self.set_text_color(*NAVY)
        self.cell(0, 6, text.upper(), align=self.start, new_x="LMARGIN", new_y="NEXT")
        self.set_draw_color(*NAVY)
        self.set_line_width(0.4)
        mark = self.w - self.r_margin - 18 if self.rtl else self.l_margin
        self.line(mark, self.get_y(), mark + 18, self.get_y())
        self.set_line_width(0.2)
        self.set_draw_color(*RULE)
        self.set_text_color(*BLACK)
        self.ln(2.5)

    def party_boxes(
        self,
        left: tuple[str, str, list[tuple[str, str]]],
        right: tuple[str, str, list[tuple[str, str]]],
    ) -> None:
        """Two framed boxes side by side, framed to the taller one so the row looks like one unit."""
        top = self.get_y()
        gap = 6.0
        width = (self.epw - gap) / 2
        bottoms = [
            self._party_box(self.l_margin, top, width, *left),
            self._party_box(self.l_margin + width + gap, top, width, *right),
        ]
        height = max(bottoms) - top + 2
        for x in (self.l_margin, self.l_margin + width + gap):
            self.rect(x, top, width, height)
        self.set_xy(self.l_margin, top + height + 2)

    def _party_box(
        self, x: float, y: float, width: float, title: str, name: str, rows: list[tuple[str, str]]
    ) -> float:
        # The frame is drawn after the text, so the text must not trigger a page break mid-box:
        # absurdly long values are cut rather than split across pages.
        name = clip(name)
        rows = [(label, clip(value)) for label, value in rows]
        self.set_xy(x, y)
        self.set_fill_color(*TINT)
        self.set_font(FONT, "B", 8.5)
        self.set_text_color(*NAVY)
        self.cell(width, 6.5, f"  {title.upper()}  ", fill=True, align=self.start, new_x="LEFT", new_y="NEXT")
        self.set_text_color(*BLACK)
        inner = width - 5
        self.set_xy(x + 2.5, self.get_y() + 1.5)
        self.set_font(FONT, "B", 10)
        self.text_block(inner, 5, name)
        self.ln(0.5)
        label_w = 27.0
        for label, value in rows:
            row_y = self.get_y()
            self.set_xy(x + 2.5, row_y)
            self.set_font(FONT, "", 8)
            self.set_text_color(*MUTED)
            label_x, value_x = x + 2.5, x + 2.5 + label_w
            if self.rtl:
                label_x, value_x = x + 2.5 + inner - label_w, x + 2.5
            self.set_x(label_x)
            self.cell(label_w, 4.6, label, align=self.start)
            self.set_text_color(*BLACK)
            self.set_font(FONT, "", 9)
            self.set_xy(value_x, row_y)
            self.text_block(inner - label_w, 4.6, value)
            self.set_x(x + 2.5)
        return self.get_y()

    def key_value_grid(self, pairs: list[tuple[str, str]]) -> None:
        """Label/value pairs two per row: dense, yet every value sits next to its label."""
        label_style = FontFace(emphasis="BOLD", color=NAVY, fill_color=TINT, size_pt=GRID_FONT_SIZE)
        value_style = FontFace(emphasis="", color=BLACK, fill_color=WHITE, size_pt=GRID_FONT_SIZE)
        rows: list[list[tuple[str, FontFace, int]]] = []
        for i in range(0, len(pairs), 2):
            chunk = pairs[i : i + 2]
            cells: list[tuple[str, FontFace, int]] = []
            for label, value in chunk:
                cells.append((label, label_style, 1))
                # A lone last pair spans the row rather than leaving an empty pair of cells.
                cells.append((value, value_style, 3 if len(chunk) == 1 else 1))
            rows.append(self.in_reading_order(cells))
        if not self.rtl and self._draw_grid(rows):
            self.ln(2)
            return
        with self.table(
            first_row_as_headings=False,
            col_widths=GRID_COLUMNS,
            text_align=("RIGHT" if self.rtl else "LEFT",) * 4,
            line_height=GRID_LINE,
            padding=GRID_PADDING,
            borders_layout=TableBordersLayout.ALL,
        ) as table:
            for cells in rows:
                row = table.row()
                for text, style, span in cells:
                    row.cell(text, style=style, colspan=span)
        self.ln(2)

    def _draw_grid(self, rows: list[list[tuple[str, FontFace, int]]]) -> bool:
        """The grid drawn cell by cell, as fpdf2's table draws it (same boxes, same wrapping).

        fpdf2's table lays every cell's text out twice (once to size the row, once to draw it), a
        character at a time; here a text that fits on one line is measured once and drawn as a plain
        cell, and only a longer one goes through the line breaker. The receipt's grid was a quarter
        of the settlement's CPU. False, drawing nothing, when the grid would cross a page: the table
        handles page breaks.
        """
        pad_y, pad_x = GRID_PADDING
        widths = [self.epw * part / sum(GRID_COLUMNS) for part in GRID_COLUMNS]
        laid_rows: list[tuple[float, list[tuple[float, float, list[str], FontFace]]]] = []
        for cells in rows:
            x, column = self.l_margin, 0
            laid: list[tuple[float, float, list[str], FontFace]] = []
            for text, style, span in cells:
                width = sum(widths[column : column + span])
                column += span
                with self.use_font_face(style):
                    if "\n" not in text and self.get_string_width(text) <= width - 2 * pad_x:
                        lines = [text]
                    else:
                        lines = self.multi_cell(
                            width,
                            GRID_LINE,
                            text,
                            dry_run=True,
                            output="LINES",
                            padding=Padding.new(GRID_PADDING),
                        )  # type: ignore[assignment]
                laid.append((x, width, lines, style))
                x += width
            laid_rows.append((max(len(cell[2]) for cell in laid) * GRID_LINE + 2 * pad_y, laid))
        if self.will_page_break(sum(height for height, _ in laid_rows)):
            return False
        fill_before = self.fill_color
        assert fill_before is not None
        for height, laid in laid_rows:
            top = self.get_y()
            for x, width, lines, style in laid:
                assert style.fill_color is not None
                self.set_fill_color(style.fill_color)
                self.rect(x, top, width, height, style="DF")
                text_top = top + (height - len(lines) * GRID_LINE) / 2
                with self.use_font_face(style):
                    for n, line in enumerate(lines):
                        # cell() keeps c_margin on each side; the table's padding replaces it.
                        self.set_xy(x + pad_x - self.c_margin, text_top + n * GRID_LINE)
                        self.cell(width - 2 * pad_x + 2 * self.c_margin, GRID_LINE, line, align=self.start)
            self.set_xy(self.l_margin, top + height)
        self.set_fill_color(fill_before)
        return True

    def totals_box(self, rows: list[tuple[str, str]]) -> None:
        """Right-aligned amounts, last row emphasised: the eye lands on what is due."""
        plain_label = FontFace(emphasis="", color=MUTED, fill_color=TINT, size_pt=9.5)
        plain_value = FontFace(emphasis="", color=BLACK, fill_color=WHITE, size_pt=9.5)
        total_style = FontFace(emphasis="BOLD", color=WHITE, fill_color=NAVY, size_pt=10)
        if self.will_page_break(8 * len(rows) + 4):
            self.add_page()
        self.ln(1)
        with self.table(
            first_row_as_headings=False,
            width=90,
            align="LEFT" if self.rtl else "RIGHT",
            col_widths=(45, 45),
            text_align=("LEFT", "RIGHT"),
            line_height=5.5,
            padding=(1.2, 2.5),
        ) as table:
            for i, (label, value) in enumerate(rows):
                last = i == len(rows) - 1
                row = table.row()
                label_style, value_style = (total_style, total_style) if last else (plain_label, plain_value)
                cells = [(label, label_style), (value, value_style)]
                for text, style in self.in_reading_order(cells):
                    row.cell(text, style=style)
        self.ln(2)

    def in_reading_order(self, cells: Sequence[_T]) -> list[_T]:
        """A row's cells from where a reader starts: right to left for Arabic."""
        return list(reversed(cells)) if self.rtl else list(cells)

    def data_table(
        self,
        headings: Sequence[str],
        rows: Sequence[Sequence[str]],
        col_widths: Sequence[float],
        text_align: Sequence[str],
        empty_text: str,
        footer_row: tuple[str, str] | None = None,
    ) -> None:
        heading_style = FontFace(emphasis="BOLD", color=WHITE, fill_color=NAVY, size_pt=8.5)
        body_style = FontFace(emphasis="", color=BLACK, size_pt=9)
        foot_style = FontFace(emphasis="BOLD", color=NAVY, fill_color=TINT, size_pt=9.5)
        mirror = {"LEFT": "RIGHT", "RIGHT": "LEFT"}
        if self.rtl:
            text_align = [mirror.get(a, a) for a in text_align]
        with self.table(
            col_widths=tuple(self.in_reading_order(col_widths)),
            text_align=tuple(self.in_reading_order(text_align)),
            headings_style=heading_style,
            line_height=5,
            padding=(1.5, 2),
            cell_fill_color=(247, 249, 252),
            cell_fill_mode="ROWS",
        ) as table:
            head = table.row()
            for title in self.in_reading_order(headings):
                head.cell(title)
            if not rows:
                table.row().cell(empty_text, colspan=len(headings), align="C", style=body_style)
            for values in rows:
                row = table.row()
                for value in self.in_reading_order(values):
                    row.cell(value, style=body_style)
            if footer_row is not None:
                row = table.row()
                foot = [(footer_row[0], len(headings) - 1), (footer_row[1], 1)]
                for text, span in self.in_reading_order(foot):
                    row.cell(text, colspan=span, align=self.end, style=foot_style)
        self.ln(2)

    def paragraph(self, text: str, size: float = 9, color: tuple[int, int, int] = BLACK) -> None:
        self.set_font(FONT, "", size)
        self.set_text_color(*color)
        self.text_block(0, 4.8, text, new_x="LMARGIN")
        self.set_text_color(*BLACK)

    def text_block(self, width: float, line_height: float, text: str, new_x: str = "LEFT") -> None:
        """``multi_cell(width, line_height, text, align=start, new_y="NEXT")``, the same lines drawn
        as plain cells when the text runs left to right (portnet/documents/wrap.py says why)."""
        width = width or self.w - self.r_margin - self.x
        lines = None
        if not self.rtl:
            text = pdf_safe_text(text)  # what cell() draws of it (normalize_text encodes it further)
            font = (
                self.font_family,
                self.font_style,
                self.font_size_pt,
                self.font_stretching,
                self.char_spacing,
                self.k,
            )
            lines = wrap_words(
                text, width - 2 * self.c_margin, lambda word: WORD_WIDTHS.width(font, word, self._measured)
            )
        if lines is None:
            self.multi_cell(width, line_height, text, align=self.start, new_x=new_x, new_y="NEXT")
            return
        x = self.get_x()
        for line in lines:
            self.set_x(x)
            self.cell(width, line_height, line, align=self.start, new_x="LEFT", new_y="NEXT")
        if new_x == "LMARGIN":
            self.set_x(self.l_margin)

    def _measured(self, word: str) -> float:
        return self.get_string_width(word)
