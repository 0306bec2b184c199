"""Bounds of every input: numbers (ids in paths and bodies, pages, page sizes) and text.

An unbounded integer reaches the database as a value it cannot hold (SQLite's INTEGER is 64 bits,
PostgreSQL's ``integer`` 32) or as an OFFSET it cannot compute: a 500 instead of a clear refusal.
Declared here once, the bounds give a 422 (French, see web/api/validation.py) before any query, and
the OpenAPI document states them, so clients and schemathesis know them too.

Text: PostgreSQL refuses a NUL character in any string and neither database driver can encode a
lone UTF-16 surrogate (JSON's "\\ud800"); both would be a 500 on the first query that carries
them. ``reject_unstorable_text`` refuses them in the URL (every route), ``storable`` in JSON bodies
(web/api/schemas.py's ``ApiModel``).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import HTTPException, Path, Query, Request
from pydantic import Field

from portnet.i18n import N_

# Ledger ids are PostgreSQL ``integer`` (SERIAL): nothing above this can exist.
MAX_ROW_ID = 2_147_483_647
# Far beyond any real result list (1M invoices at 10 a page), far below an overflowing OFFSET.
MAX_PAGE = 100_000
# Our order ids ("PN" + 12 hex digits; "PNU..." for applied unapplied money); the pattern also keeps
# NUL bytes and other odd characters away from the database.
PAYMENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_DIGITS = re.compile(r"[0-9]{1,10}")

RowIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
PaymentIdPath = Annotated[str, Path(pattern=PAYMENT_ID_PATTERN, max_length=64)]
PageQuery = Annotated[int, Query(ge=1, le=MAX_PAGE)]
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


def row_id(text: str | None) -> int | None:
    """A row id typed in a URL or a form field: ASCII digits within bounds, or None.

    ``str.isdigit`` is not enough: it accepts "²", which ``int()`` then refuses.
    """
    value = (text or "").strip()
    if not _DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if 1 <= number <= MAX_ROW_ID else None


def page_number(text: str | None, default: int = 1) -> int:
    """A page number from a portal link: out-of-range or malformed values fall back, never overflow."""
    value = (text or "").strip()
    if not _DIGITS.fullmatch(value):
        return default
    return min(max(int(value), 1), MAX_PAGE)


UNSTORABLE_TEXT = N_("Texte invalide : caractère nul ou non UTF-8.")


def storable(text: str) -> bool:
    """Whether both databases can store and compare this text."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def reject_unstorable_text(request: Request) -> None:
    """An app-wide dependency: a URL (path or query) whose decoded text no database takes is a 422.

    ``async`` although it awaits nothing: it runs on every request, and a plain ``def`` would be
    sent to the thread pool and back each time."""
    if not storable(request.url.path) or not all(
        storable(key) and storable(value) for key, value in request.query_params.multi_items()
    ):
        raise HTTPException(status_code=422, detail=UNSTORABLE_TEXT)
