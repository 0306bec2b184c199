"""Who may see a page, and whether a posted form really comes from our own pages.

Refusals are raised as ``HTTPException`` (a 303 with ``Location`` for "log in first"), so a route
cannot forget to stop after a refusal; the portal's error handlers turn them into French pages.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, HTTPException, Request
from starlette.datastructures import FormData

from portnet.i18n import N_
from portnet.models import User
from portnet.statuses import Role
from web.deps import AppSettings, optional_user
from web.limits import row_id
from web.sessions import csrf_valid

CSRF_MESSAGE = N_("Jeton de sécurité invalide, rechargez la page.")
PASSWORD_PAGE = "/mot-de-passe"  # noqa: S105 - a URL, not a secret
# Pages a user who must change their password may still reach.
ALLOWED_BEFORE_PASSWORD_CHANGE = {PASSWORD_PAGE, "/deconnexion"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_next(target: str | None, default: str = "/factures") -> str:
    """Only a path of this site: ``//evil.example``, ``https://...`` or ``/\\evil`` fall back to default."""
    if not target or _CONTROL.search(target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if target.startswith(("/connexion", "/deconnexion")):
        return default
    return target


def login_url(request: Request) -> str:
    """Where to log in, coming back here afterwards (a POST comes back to the invoice list)."""
    if request.method != "GET":
        return "/connexion"
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/connexion?next={quote(here, safe='/')}"


async def page_user(request: Request, user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise HTTPException(status_code=303, headers={"Location": login_url(request)})
    if user.must_change_password and request.url.path not in ALLOWED_BEFORE_PASSWORD_CHANGE:
        raise HTTPException(status_code=303, headers={"Location": PASSWORD_PAGE})
    return user


PageUser = Annotated[User, Depends(page_user)]


def is_client(user: User) -> bool:
    """Only clients settle invoices; finance and admin look at every company's but pay none."""
    return user.role == Role.CLIENT.value and user.company_id is not None


async def checked_form(request: Request, settings: AppSettings) -> FormData:
    """The posted form, once its CSRF token has been verified."""
    form = await request.form()
    token = form.get("csrf_token")
    if not csrf_valid(request, settings, token if isinstance(token, str) else None):
        raise HTTPException(status_code=400, detail=CSRF_MESSAGE)
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def form_str(form: FormData, name: str, limit: int = 500) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def form_ids(form: FormData, name: str = "invoice_ids") -> list[int]:
    """Invoice ids as posted by the checkboxes; anything that is not a positive integer is dropped."""
    ids: list[int] = []
    for key in (name, f"{name}[]"):
        for raw in form.getlist(key):
            value = row_id(raw) if isinstance(raw, str) else None
            if value is not None and value not in ids:
                ids.append(value)
    return ids
