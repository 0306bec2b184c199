"""French error pages for the portal, French JSON errors for the API.

Exception handlers belong to the application, not to a router, hence ``install_error_pages(app)``
called by the factory.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from portnet.db import get_engine
from portnet.i18n import N_
from portnet.settings import Settings, get_settings
from web.api.validation import UNREADABLE_BODY, validation_response
from web.pages.rendering import render
from web.security import security_headers
from web.sessions import user_of_request

log = logging.getLogger("portnet.web.pages")

TITLES = {
    400: N_("Requête invalide"),
    401: "Authentification requise",
    403: N_("Accès refusé"),
    404: "Page introuvable",
    405: N_("Méthode non autorisée"),
    409: "Conflit",
    422: N_("Données invalides"),
    413: N_("Requête trop volumineuse"),
    415: N_("Type de contenu non pris en charge"),
    429: N_("Trop de requêtes"),
    503: "Service indisponible",
}
# Starlette's and FastAPI's own English details, as the API answers them.
API_DETAILS = {"There was an error parsing the body": UNREADABLE_BODY}
MESSAGES = {
    403: N_("Vous n'avez pas accès à cette page."),
    404: N_("La page ou le document demandé n'existe pas, ou ne vous est pas accessible."),
    405: N_("Cette adresse ne s'utilise pas ainsi."),
    500: N_(
        "Une erreur inattendue s'est produite. Réessayez dans un instant ; si le problème persiste, "
        "contactez le HelpDesk."
    ),
}


def _phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return ""


# The JSON API and the Temporal codec endpoint (which the Web UI and the CLI call) answer errors in JSON.
JSON_PREFIXES = ("/api/", "/temporal-codec/")


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(JSON_PREFIXES) or path in ("/healthz", "/docs", "/redoc", "/openapi.json")


def _attach_user(request: Request) -> None:
    """An unknown URL ran no dependency: look the user up so the page still has its menu."""
    if getattr(request.state, "user", None) is not None:
        return
    try:
        with Session(get_engine(), expire_on_commit=False) as db:
            request.state.user = user_of_request(db, request)
    except Exception:  # noqa: BLE001 - an error page must render even when the database does not
        request.state.user = None


def error_page(request: Request, status_code: int, message: str | None = None) -> Response:
    _attach_user(request)
    title = TITLES.get(status_code, "Erreur")
    return render(
        request,
        "error.html",
        {"title": title, "status": status_code, "message": message or MESSAGES.get(status_code, title)},
        status_code=status_code,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if wants_json(request):
        if isinstance(exc.detail, str):
            if exc.detail == _phrase(exc.status_code):
                exc.detail = (
                    N_("Ressource introuvable.")
                    if exc.status_code == 404
                    else (f"{TITLES.get(exc.status_code, 'Erreur')}.")
                )
            exc.detail = API_DETAILS.get(exc.detail, exc.detail)
        return await http_exception_handler(request, exc)
    location = (exc.headers or {}).get("Location")
    if 300 <= exc.status_code < 400 and location:
        response = RedirectResponse(location, status_code=exc.status_code)
        response.headers["Cache-Control"] = "no-store"
        return response
    # Starlette's default detail is the English reason phrase: keep only the messages we wrote.
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != _phrase(exc.status_code) else None
    page = error_page(request, exc.status_code, detail)
    for name, value in (exc.headers or {}).items():
        page.headers.setdefault(name, value)
    return page


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if wants_json(request):
        return validation_response(request, exc)
    # A page's parameters come from links and forms we wrote: a malformed one is a page that does not exist.
    return error_page(request, 404)


async def _server_error(request: Request, exc: Exception) -> Response:
    """Starlette sends this answer from outside every middleware: it gets the security headers here."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    settings: Settings = getattr(request.app.state, "settings", None) or get_settings()
    response = _server_error_answer(request)
    security_headers(response.headers, request.scope, settings)
    return response


def _server_error_answer(request: Request) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": N_("Erreur interne.")}, status_code=500)
    try:
        request.state.user = None  # no database round trip: it may be what failed
        return render(
            request,
            "error.html",
            {"title": "Erreur interne", "status": 500, "message": MESSAGES[500]},
            status_code=500,
        )
    except Exception:  # noqa: BLE001 - last resort
        return Response(N_("Erreur interne."), status_code=500, media_type="text/plain; charset=utf-8")


def install_error_pages(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
