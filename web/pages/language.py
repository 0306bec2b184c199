"""The language switch of the page header: a small CSRF-checked form on every page.

A logged-in user's choice is their profile's language (``user.language``), which their e-mails and
receipts follow too; a visitor's is kept in a cookie for a year. Either beats ``Accept-Language``.
The answer goes back to the page the form was on, read from the ``Referer`` (same origin only; our
``Referrer-Policy: same-origin`` sends it): the form itself carries no address, so no page echoes
its own URL (a receipt verification refusal must read the same whatever code was asked).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response

from portnet import i18n
from portnet.models import User
from web.deps import DB, AppSettings, optional_user
from web.locale import LANGUAGE_COOKIE
from web.pages.guards import CheckedForm, form_str, safe_next
from web.pages.rendering import redirect

router = APIRouter()
ONE_YEAR = 365 * 24 * 3600


def back_to(request: Request) -> str:
    """The same-origin page the switch was used on, or the home page."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc:
        return "/"
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""), "/")


@router.post("/langue")
def choose_language(
    request: Request,
    db: DB,
    form: CheckedForm,
    settings: AppSettings,
    user: Annotated[User | None, Depends(optional_user)],
) -> Response:
    language = i18n.normalize(form_str(form, "lang", 8))
    response = redirect(back_to(request))
    if language is None:
        return response
    if user is not None:
        row = db.get(User, user.id)
        if row is not None:
            row.language = language
            db.add(row)
            db.commit()
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=ONE_YEAR,
        httponly=True,
        samesite="lax",
        secure=settings.session_cookie_secure,
        path="/",
    )
    return response
