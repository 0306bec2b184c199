"""The « Mot de passe oublié ? » pages: ask for a link, then choose a new password from it.

The logic (throttling, tokens, mail, the reset itself) is web.password_reset's; these routes only
read the forms (CSRF-checked with the pre-login cookie) and answer in French.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.concurrency import run_in_threadpool

from portnet.audit import audit
from portnet.db import session_scope
from portnet.i18n import N_
from portnet.models import User
from web.api.session import client_address
from web.deps import DB, AppSettings
from web.pages.guards import CheckedForm, form_str
from web.pages.rendering import redirect, render_anonymous
from web.password_reset import (
    ANSWER,
    IDENTIFIER_LIMIT,
    INVALID_LINK,
    RESET_PATH,
    RequestOutcome,
    reset_password,
    send_reset_mails,
    throttle_request,
    valid_link,
)
from web.sessions import request_now

router = APIRouter()


@router.get(RESET_PATH)
def forgotten_form(request: Request, settings: AppSettings) -> Response:
    request.state.user = None
    return render_anonymous(
        request, "password_forgotten.html", {"identifier": "", "message": None}, settings=settings
    )


@router.post(RESET_PATH)
async def forgotten(
    request: Request, form: CheckedForm, settings: AppSettings, background: BackgroundTasks
) -> Response:
    request.state.user = None
    identifier = form_str(form, "identifier", IDENTIFIER_LIMIT)
    if not identifier:
        return render_anonymous(
            request,
            "password_forgotten.html",
            {
                "identifier": "",
                "message": N_("Indiquez votre nom d'utilisateur ou votre adresse e-mail."),
                "kind": "error",
            },
            status_code=422,
            settings=settings,
        )
    now = request_now(request)

    def throttle() -> RequestOutcome:
        with session_scope() as db:
            return throttle_request(db, settings, identifier, client_address(request), now)

    outcome = await run_in_threadpool(throttle)
    if not outcome.allowed:
        page = render_anonymous(
            request,
            "password_forgotten.html",
            {"identifier": identifier, "message": outcome.message, "kind": "error"},
            status_code=429,
            settings=settings,
        )
        if outcome.retry_at is not None:
            page.headers["Retry-After"] = str(max(1, math.ceil((outcome.retry_at - now).total_seconds())))
        return page
    # The lookup and the mail come after the answer: the same text and time for any identifier.
    background.add_task(send_reset_mails, settings, identifier, now)
    return render_anonymous(
        request,
        "password_forgotten.html",
        {"identifier": "", "message": ANSWER, "kind": "success"},
        settings=settings,
    )


def _invalid(request: Request, settings: AppSettings) -> Response:
    audit("password_reset.invalid_link", address=client_address(request))
    return redirect(RESET_PATH, INVALID_LINK, "error", settings)


@router.get(RESET_PATH + "/{token}")
def reset_form(token: str, request: Request, db: DB, settings: AppSettings) -> Response:
    request.state.user = None
    row = valid_link(db, token, request_now(request))
    if row is None:
        return _invalid(request, settings)
    user = db.get(User, row.user_id)
    return render_anonymous(
        request,
        "password_reset.html",
        {"token": token, "username": user.username if user else "", "problems": []},
        settings=settings,
    )


@router.post(RESET_PATH + "/{token}")
def reset(token: str, request: Request, db: DB, form: CheckedForm, settings: AppSettings) -> Response:
    request.state.user = None
    new = form.get("new_password")
    confirm = form.get("confirm_password")
    new = new if isinstance(new, str) else ""
    confirm = confirm if isinstance(confirm, str) else ""
    if not new:
        problems: list[str] | None = [N_("Renseignez le nouveau mot de passe.")]
        if valid_link(db, token, request_now(request)) is None:
            problems = None
    else:
        problems = reset_password(db, token, new, confirm, request_now(request))
    if problems is None:
        return _invalid(request, settings)
    if problems:
        return render_anonymous(
            request,
            "password_reset.html",
            {"token": token, "username": form_str(form, "username", 150), "problems": problems},
            status_code=422,
            settings=settings,
        )
    return redirect(
        "/connexion",
        N_("Votre nouveau mot de passe a été enregistré. Connectez-vous avec celui-ci."),
        "success",
        settings,
    )
