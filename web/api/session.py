"""Login, logout and password change for API clients (same cookie as the portal)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from sqlmodel import select

from portnet.models import Company, User
from portnet.security import hash_password, password_problems, verify_password
from web.api.schemas import LoginBody, PasswordBody, UserOut
from web.deps import DB, AppSettings, CurrentUser
from web.sessions import close_session, open_session

router = APIRouter(prefix="/api/v1/session", tags=["session"])


def authenticate(db: DB, username: str, password: str) -> User | None:
    user = db.exec(select(User).where(User.username == username.strip())).first()
    if user is None or not user.is_active:
        # Same work as a real check, so timing does not reveal which usernames exist.
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, user.password_hash):
        return None
    return user


_DUMMY_HASH = hash_password("not-a-real-password-0")


def user_out(db: DB, user: User) -> UserOut:
    company = db.get(Company, user.company_id) if user.company_id else None
    return UserOut(
        username=user.username,
        role=user.role,
        company=company.name if company else None,
        customs_code=company.customs_code if company else None,
        must_change_password=user.must_change_password,
    )


@router.post("", response_model=UserOut, responses={401: {"description": "Bad credentials"}})
def login(body: LoginBody, response: Response, db: DB, settings: AppSettings) -> UserOut:
    user = authenticate(db, body.username, body.password)
    if user is None:
        raise HTTPException(status_code=401, detail="Nom d'utilisateur ou mot de passe incorrect.")
    open_session(db, user, settings, response)
    return user_out(db, user)


@router.get("", response_model=UserOut)
def whoami(user: CurrentUser, db: DB) -> UserOut:
    return user_out(db, user)


@router.delete("", status_code=204)
def logout(request: Request, response: Response, db: DB) -> Response:
    close_session(db, request, response)
    response.status_code = 204
    return response


def change_password(db: DB, user: User, current: str, new: str) -> list[str]:
    """Shared with the portal form: returns the problems, empty when the password was changed."""
    if not verify_password(current, user.password_hash):
        return ["Le mot de passe actuel est incorrect."]
    problems = password_problems(new, user.username)
    if current == new:
        problems.append("Le nouveau mot de passe doit être différent de l'actuel.")
    if problems:
        return problems
    user.password_hash = hash_password(new)
    user.must_change_password = False
    db.add(user)
    db.commit()
    return []


@router.post("/password", status_code=204, responses={422: {"description": "Rejected password"}})
def password(body: PasswordBody, user: CurrentUser, db: DB) -> Response:
    problems = change_password(db, user, body.current_password, body.new_password)
    if problems:
        raise HTTPException(status_code=422, detail=" ".join(problems))
    return Response(status_code=204)
