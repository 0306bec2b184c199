"""Access requests in the JSON API: anyone may file one; finance lists them and marks them handled."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from web.access_requests import (
    AccessRequestError,
    AccessRequestInput,
    list_requests,
    mark_handled,
    request_json,
    submit,
)
from web.api.schemas import ApiModel, ErrorOut
from web.api.session import client_address
from web.deps import DB, AppSettings, FinanceUser
from web.limits import RowIdPath
from web.sessions import request_now

router = APIRouter(prefix="/api/v1", tags=["access requests"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 422, 429)
}


class AccessRequestBody(ApiModel):
    company_name: str = Field(max_length=200)
    customs_code: str = Field(max_length=10)
    contact_name: str = Field(max_length=150)
    email: str = Field(max_length=254)
    phone: str = Field(max_length=20)
    role: str = Field(max_length=20)


def _error(err: AccessRequestError) -> JSONResponse:
    return JSONResponse({"detail": err.message, "code": "access_request"}, status_code=err.status_code)


@router.post("/access-requests", status_code=201, responses=ERRORS)
def file_request(body: AccessRequestBody, request: Request, db: DB, settings: AppSettings) -> Any:
    try:
        row = submit(
            db,
            settings,
            AccessRequestInput(**body.model_dump()),
            client_address(request),
            request_now(request),
        )
    except AccessRequestError as err:
        return _error(err)
    return JSONResponse({"id": row.id, "status": "open"}, status_code=201)


@router.get("/finance/access-requests", responses=ERRORS)
def requests(user: FinanceUser, db: DB, status: Literal["open", "handled", "all"] = "open") -> dict[str, Any]:
    return {"items": [request_json(r) for r in list_requests(db, status)]}


@router.post("/finance/access-requests/{request_id}/handled", responses=ERRORS)
def handled(request_id: RowIdPath, request: Request, user: FinanceUser, db: DB) -> Any:
    try:
        row = mark_handled(db, request_id, user, request_now(request))
    except AccessRequestError as err:
        return _error(err)
    return request_json(row)
