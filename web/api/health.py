"""Liveness for load balancers and the launcher: 200 only when the ledger and Temporal answer."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from portnet.db import get_engine

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with get_engine().connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", reported as text
        checks["database"] = f"error: {type(exc).__name__}"
    client = await request.app.state.temporal.get()
    if client is None:
        checks["temporal"] = "unreachable"
    else:
        try:
            await client.service_client.check_health()
            checks["temporal"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["temporal"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", **checks}, status_code=200 if healthy else 503
    )
