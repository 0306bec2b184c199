"""« Nouveau client ? »: the public access request form, and finance's list of requests.

The logic is web.access_requests's (shared with the JSON API); these routes read the CSRF-checked
forms and answer in French.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from portnet.models import User
from web.access_requests import (
    FIELDS,
    RECEIVED,
    ROLES,
    AccessRequestError,
    AccessRequestInput,
    list_requests,
    mark_handled,
    problems_of,
    request_json,
    submit,
)
from web.api.session import client_address
from web.deps import DB, AppSettings
from web.limits import RowIdPath
from web.pages.finance import finance_page_user
from web.pages.guards import CheckedForm, form_str
from web.pages.rendering import redirect, render, render_anonymous
from web.sessions import request_now

router = APIRouter()
FINANCE_PAGE = "/finance/demandes-acces"
FinancePageUser = Annotated[User, Depends(finance_page_user)]


def _form_page(
    request: Request,
    settings: AppSettings,
    values: dict[str, str],
    problems: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    request.state.user = None
    return render_anonymous(
        request,
        "access_request.html",
        {"values": values, "problems": problems or {}, "roles": ROLES, "message": message},
        status_code=status_code,
        settings=settings,
    )


@router.get("/nouveau-client")
def access_request_form(request: Request, settings: AppSettings) -> Response:
    return _form_page(request, settings, {name: "" for name in FIELDS})


@router.post("/nouveau-client")
def access_request(request: Request, db: DB, form: CheckedForm, settings: AppSettings) -> Response:
    values = {name: form_str(form, name, 254) for name in FIELDS}
    data = AccessRequestInput(**values)
    problems = problems_of(data)
    if problems:
        return _form_page(request, settings, values, problems, status_code=422)
    try:
        submit(db, settings, data, client_address(request), request_now(request))
    except AccessRequestError as err:
        return _form_page(request, settings, values, message=err.message, status_code=err.status_code)
    return redirect("/connexion", RECEIVED, "success", settings)


@router.get(FINANCE_PAGE)
def access_requests_page(request: Request, db: DB, user: FinancePageUser, settings: AppSettings) -> Response:
    status = request.query_params.get("status", "open")
    status = status if status in ("open", "handled", "all") else "open"
    return render(
        request,
        "finance/access_requests.html",
        {"items": [request_json(r) for r in list_requests(db, status)], "status": status},
        settings=settings,
    )


@router.post(FINANCE_PAGE + "/{request_id}/traitee")
def handled(
    request: Request,
    request_id: RowIdPath,
    db: DB,
    user: FinancePageUser,
    form: CheckedForm,
    settings: AppSettings,
) -> Response:
    try:
        row = mark_handled(db, request_id, user, request_now(request))
    except AccessRequestError as err:
        return redirect(FINANCE_PAGE, err.message, "error", settings)
    return redirect(
        FINANCE_PAGE, f"Demande d'accès de {row.company_name} marquée comme traitée.", "success", settings
    )
