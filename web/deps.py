"""FastAPI dependencies shared by the API and the portal: database, user, Temporal client.

FastAPI runs a plain ``def`` dependency in a worker thread: a hop to the thread pool and back to the
event loop, which under load cost more CPU than the check itself. Those that only look at values
already in memory (settings, the user found, their role) are ``async def`` and run on the loop;
those that read the ledger (``db_session``, ``optional_user``) stay in threads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session
from temporalio.client import Client

from portnet.db import get_engine
from portnet.i18n import N_
from portnet.models import User
from portnet.settings import Settings, get_settings
from portnet.statuses import Role
from web.sessions import user_of_request


async def db_session() -> AsyncIterator[Session]:
    """The request's session. Opening one touches no connection (the first query does), so it is
    made on the loop; closing it gives a connection back to the pool (a rollback on it), so that is
    done in a thread, and only when the request left a transaction open. The close gets its own
    limiter and is shielded, as FastAPI does for a plain generator: a request cancelled, or a full
    thread pool, never keeps a connection checked out."""
    session = Session(get_engine(), expire_on_commit=False)
    try:
        yield session
    finally:
        if session.in_transaction():
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.close, limiter=anyio.CapacityLimiter(1))
        else:
            session.close()


async def settings_dep(request: Request) -> Settings:
    """The app's own settings (tests and benchmarks build apps with their own)."""
    settings: Settings = getattr(request.app.state, "settings", None) or get_settings()
    return settings


DB = Annotated[Session, Depends(db_session)]
AppSettings = Annotated[Settings, Depends(settings_dep)]


def optional_user(request: Request, db: DB) -> User | None:
    user = user_of_request(db, request)
    request.state.user = user
    return user


PASSWORD_CHANGE_REQUIRED = "password_change_required"  # noqa: S105 - an error code, not a secret


class PasswordChangeRequired(Exception):
    """The user must replace a password PortNet gave them before the API does anything else."""


async def password_change_required_response(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {
            "code": PASSWORD_CHANGE_REQUIRED,
            "detail": N_("Changez votre mot de passe (POST /api/v1/session/password) avant de continuer."),
        },
        status_code=403,
    )


async def session_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    """Any logged-in user, even one who must still change their password (password change, logout)."""
    if user is None:
        raise HTTPException(status_code=401, detail=N_("Authentification requise."))
    return user


async def api_user(user: Annotated[User, Depends(session_user)]) -> User:
    """A logged-in user who may use the API: a forced password change comes first (403)."""
    if user.must_change_password:
        raise PasswordChangeRequired
    return user


async def finance_user(user: Annotated[User, Depends(api_user)]) -> User:
    if user.role not in (Role.FINANCE.value, Role.ADMIN.value):
        raise HTTPException(status_code=403, detail=N_("Réservé au service financier."))
    return user


def company_scope(user: User) -> int | None:
    """The company whose invoices this user may see; None means all (finance and admin)."""
    if user.role in (Role.FINANCE.value, Role.ADMIN.value):
        return None
    return user.company_id if user.company_id is not None else -1


async def temporal_client(request: Request) -> Client:
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        raise HTTPException(
            status_code=503,
            detail=N_("Service de paiement momentanément indisponible."),
            headers={"Retry-After": "5"},
        )
    return client


CurrentUser = Annotated[User, Depends(api_user)]
SessionUser = Annotated[User, Depends(session_user)]
FinanceUser = Annotated[User, Depends(finance_user)]
Temporal = Annotated[Client, Depends(temporal_client)]
