"""Health probes: liveness (``/healthz``) and readiness (``/readyz``).

``/healthz`` answers 200 as long as the process serves requests: a load balancer or an orchestrator
restarts the portal only when it stops answering, never because the database or Temporal is down
(restarting would not bring them back). ``/readyz`` answers 200 only when the ledger and Temporal
answer: compose's healthcheck, the launcher and load balancers send traffic on it.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError

from portnet.db import get_engine

router = APIRouter(tags=["health"])

TEMPORAL_CHECK_SECONDS = 3.0


@router.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _database() -> str:
    try:
        with get_engine().connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported as text
        return f"error: {type(exc).__name__}"


async def _temporal(request: Request) -> str:
    client = await request.app.state.temporal.get()
    if client is None:
        return "unreachable"
    try:
        # retry: one dropped RPC on a busy server is not "not ready"; the wait bounds the retries.
        serving = await asyncio.wait_for(
            client.service_client.check_health(retry=True), timeout=TEMPORAL_CHECK_SECONDS
        )
        return "ok" if serving else "error: not serving"
    except RPCError as exc:
        return f"error: RPCError {exc.status.name}"
    except Exception as exc:  # noqa: BLE001
        return f"error: {type(exc).__name__}"


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    checks = {"database": await run_in_threadpool(_database), "temporal": await _temporal(request)}
    ready = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if ready else "degraded", **checks}
    return JSONResponse(body, status_code=200 if ready else 503)
