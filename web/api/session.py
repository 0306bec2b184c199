"""Login, logout and password change for API clients (same cookie as the portal)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from portnet.audit import audit
from portnet.i18n import N_
from portnet.models import Company, User
from portnet.security import hash_password, password_problems, verify_password
from web.api.schemas import LoginBody, PasswordBody, UserOut
from web.deps import DB, AppSettings, CurrentUser, SessionUser
from web.login import BAD_CREDENTIALS, attempt_login
from web.sessions import close_session, open_session, request_now, revoke_other_sessions, session_token

router = APIRouter(prefix="/api/v1/session", tags=["session"])


def user_out(db: DB, user: User) -> UserOut:
    company = db.get(Company, user.company_id) if user.company_id else None
    return UserOut(
        username=user.username,
        role=user.role,
        company=company.name if company else None,
        customs_code=company.customs_code if company else None,
        must_change_password=user.must_change_password,
    )


def client_address(request: Request) -> str | None:
    """The caller's address as uvicorn saw it (behind the load balancer: from its trusted headers)."""
    return request.client.host if request.client else None


@router.post(
    "",
    response_model=UserOut,
    responses={
        401: {"description": "Bad credentials"},
        429: {"description": "Too many failures: try again after Retry-After seconds"},
    },
)
def login(body: LoginBody, request: Request, db: DB, settings: AppSettings) -> Response:
    now = request_now(request)
    outcome = attempt_login(db, settings, body.username, body.password, client_address(request), now)
    if outcome.user is None:
        retry_after = outcome.retry_after_seconds(now)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        if outcome.throttled:
            return JSONResponse(
                {"code": "login_throttled", "detail": outcome.message, "retry_at": outcome.retry_at_iso()},
                status_code=429,
                headers=headers,
            )
        raise HTTPException(status_code=401, detail=outcome.message or BAD_CREDENTIALS, headers=headers)
    answer = JSONResponse(user_out(db, outcome.user).model_dump())
    open_session(db, outcome.user, settings, answer, now)
    return answer


@router.get("", response_model=UserOut)
def whoami(user: CurrentUser, db: DB) -> UserOut:
    return user_out(db, user)


@router.delete("", status_code=204)
def logout(request: Request, response: Response, db: DB) -> Response:
    close_session(db, request, response)
    response.status_code = 204
    return response


def change_password(db: DB, user: User, current: str, new: str, keep_session: str | None) -> list[str]:
    """Shared with the portal form: returns the problems, empty when the password was changed.

    Every other session of the user ends (whoever holds one logged in with the old password); the
    session ``keep_session`` (the cookie token of the user making the change) stays.
    """
    if not verify_password(current, user.password_hash):
        return [N_("Le mot de passe actuel est incorrect.")]
    problems = password_problems(new, user.username)
    if current == new:
        problems.append(N_("Le nouveau mot de passe doit être différent de l'actuel."))
    if problems:
        return problems
    user.password_hash = hash_password(new)
    user.must_change_password = False
    db.add(user)
    revoked = revoke_other_sessions(db, user, keep_session)
    db.commit()
    audit("password.changed", user=user.username, other_sessions_ended=revoked)
    return []


@router.post("/password", status_code=204, responses={422: {"description": "Rejected password"}})
def password(body: PasswordBody, request: Request, user: SessionUser, db: DB) -> Response:
    problems = change_password(db, user, body.current_password, body.new_password, session_token(request))
    if problems:
        raise HTTPException(status_code=422, detail=" ".join(problems))
    return Response(status_code=204)
