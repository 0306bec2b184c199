"""The language switch of the page header: a small CSRF-checked form on every page.

A logged-in user's choice is their profile's language (``user.language``), which their e-mails and
receipts follow too; a visitor's is kept in a cookie for a year. Either beats ``Accept-Language``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from portnet import i18n
from portnet.models import User
from web.deps import DB, AppSettings, optional_user
from web.locale import LANGUAGE_COOKIE
from web.pages.guards import CheckedForm, form_str, safe_next
from web.pages.rendering import redirect

router = APIRouter()
ONE_YEAR = 365 * 24 * 3600


@router.post("/langue")
def choose_language(
    db: DB,
    form: CheckedForm,
    settings: AppSettings,
    user: Annotated[User | None, Depends(optional_user)],
) -> Response:
    language = i18n.normalize(form_str(form, "lang", 8))
    response = redirect(safe_next(form_str(form, "next", 500), "/"))
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
