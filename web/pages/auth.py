"""Login, logout and password change of the portal ("ACCÈS GUICHET UNIQUE")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from portnet.i18n import N_
from portnet.models import User
from web.api.session import change_password, client_address
from web.deps import DB, AppSettings, optional_user
from web.login import BAD_CREDENTIALS, attempt_login
from web.pages.guards import (
    CSRF_MESSAGE,
    PASSWORD_PAGE,
    CheckedForm,
    PageUser,
    form_str,
    safe_next,
)
from web.pages.rendering import redirect, render, render_anonymous
from web.sessions import (
    close_session,
    csrf_valid,
    open_session,
    request_now,
    session_token,
)

router = APIRouter()
MUST_CHANGE = N_(
    "Pour votre sécurité, choisissez un nouveau mot de passe avant de continuer "
    "(votre mot de passe actuel a été attribué par PortNet)."
)


HOME_PAGE = "/accueil"


@router.get("/")
def root(user: Annotated[User | None, Depends(optional_user)]) -> Response:
    return redirect(HOME_PAGE if user is not None else "/connexion")


@router.get(HOME_PAGE)
def home(request: Request, user: PageUser, settings: AppSettings) -> Response:
    """The main screen after login (guide, "Présentation de l'écran principal"): the menus as tiles."""
    return render(request, "home.html", {}, settings=settings)


def _login_page(
    request: Request,
    settings: AppSettings,
    *,
    username: str = "",
    next_url: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render_anonymous(
        request,
        "login.html",
        {"username": username, "next": next_url, "error": error},
        status_code=status_code,
        settings=settings,
    )


@router.get("/connexion")
def login_form(
    request: Request,
    settings: AppSettings,
    user: Annotated[User | None, Depends(optional_user)],
    next: str | None = None,
) -> Response:
    if user is not None:
        return redirect(PASSWORD_PAGE if user.must_change_password else safe_next(next, HOME_PAGE))
    request.state.user = None
    return _login_page(request, settings, next_url=safe_next(next, ""))


@router.post("/connexion")
async def login(request: Request, db: DB, settings: AppSettings) -> Response:
    form = await request.form()
    token = form.get("csrf_token")
    if not csrf_valid(request, settings, token if isinstance(token, str) else None):
        request.state.user = None
        return render(
            request,
            "error.html",
            {"title": N_("Requête invalide"), "status": 400, "message": CSRF_MESSAGE},
            status_code=400,
            settings=settings,
        )
    username = form_str(form, "username", 150)
    password = form.get("password")
    next_url = safe_next(form_str(form, "next", 1000), "")
    if not (username and isinstance(password, str) and password and len(password) <= 1024):
        return _login_page(
            request, settings, username=username, next_url=next_url, error=BAD_CREDENTIALS, status_code=401
        )
    now = request_now(request)
    # The password hash and the ledger in a worker thread: the event loop never waits on them.
    outcome = await run_in_threadpool(
        attempt_login, db, settings, username, password, client_address(request), now
    )
    if outcome.user is None:
        page = _login_page(
            request,
            settings,
            username=username,
            next_url=next_url,
            error=outcome.message or BAD_CREDENTIALS,
            status_code=429 if outcome.throttled else 401,
        )
        retry_after = outcome.retry_after_seconds(now)
        if retry_after is not None:
            page.headers["Retry-After"] = str(retry_after)
        return page
    user = outcome.user
    if user.must_change_password:
        response = redirect(PASSWORD_PAGE, MUST_CHANGE, "warning", settings)
    else:
        response = redirect(safe_next(next_url, HOME_PAGE))
    await run_in_threadpool(open_session, db, user, settings, response, now)
    return response


@router.post("/deconnexion")
def logout(request: Request, db: DB, user: PageUser, form: CheckedForm, settings: AppSettings) -> Response:
    response = redirect("/connexion", N_("Vous êtes déconnecté."), "info", settings)
    close_session(db, request, response)
    return response


def _password_page(
    request: Request,
    settings: AppSettings,
    user: User,
    problems: list[str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    notice = MUST_CHANGE if user.must_change_password else None
    return render(
        request,
        "password.html",
        {"problems": problems or [], "notice": notice},
        status_code=status_code,
        settings=settings,
    )


@router.get(PASSWORD_PAGE)
def password_form(request: Request, user: PageUser, settings: AppSettings) -> Response:
    return _password_page(request, settings, user)


@router.post(PASSWORD_PAGE)
def password_change(
    request: Request, db: DB, user: PageUser, form: CheckedForm, settings: AppSettings
) -> Response:
    current = form.get("current_password")
    new = form.get("new_password")
    confirm = form.get("confirm_password")
    current = current if isinstance(current, str) else ""
    new = new if isinstance(new, str) else ""
    confirm = confirm if isinstance(confirm, str) else ""
    problems: list[str] = []
    if not current or not new:
        problems.append(N_("Renseignez le mot de passe actuel et le nouveau mot de passe."))
    elif new != confirm:
        problems.append(N_("Les mots de passe ne correspondent pas."))
    else:
        problems = change_password(db, user, current, new, session_token(request))
    if problems:
        return _password_page(request, settings, user, problems, status_code=422)
    return redirect("/factures", N_("Votre nouveau mot de passe a été enregistré."), "success", settings)
