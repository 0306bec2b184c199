"""Login throttling per account name and per client address, kept in the database.

Rules (settings ``LOGIN_MAX_FAILURES``, ``LOGIN_LOCK_SECONDS``, ``LOGIN_FAILURE_WINDOW_SECONDS``):
the first failures cost nothing (people mistype); from the 5th failure on, the next attempt must
wait, longer each time (1 min, then 5 min), and then the key is locked for 15 minutes after every
further failure. While a key waits, every attempt is refused *before* the password is checked, even
the right one, so guessing through the lock learns nothing. A successful login clears the account's
failures; failures are otherwise forgotten an hour after the last one.

Both keys apply to every attempt: the account name as typed (case-folded; an unknown name is
throttled exactly like a real one, so the answers do not tell which accounts exist) and the client
address (an IPv6 address counts as its /64, which one subscriber usually holds whole).

Each attempt is counted as a failure *before* the password is checked, in one conditional UPDATE
per key, and given back if the password was right. A burst of parallel requests therefore cannot
slip many guesses through before the first failure is written: each request gets its own number,
and the ones past the limit are refused. The rows live in the database so that every portal replica
counts the same failures.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from portnet.models import LoginThrottle
from portnet.settings import Settings

ACCOUNT = "account"
ADDRESS = "address"
KEY_LENGTH = 150
# The first wait after the limit; each further failure multiplies it until it reaches the lock.
FIRST_WAIT = timedelta(minutes=1)
WAIT_GROWTH = 5

_table: Any = LoginThrottle.__table__  # type: ignore[attr-defined]


def account_key(username: str) -> str:
    return username.strip().casefold()[:KEY_LENGTH]


def address_key(address: str | None) -> str:
    """An IPv4 address as is, an IPv6 address as its /64 network; anything else as given."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:KEY_LENGTH]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def wait_after(failures: int, settings: Settings) -> timedelta | None:
    """How long a key waits after its ``failures``-th failure in a row; None below the limit."""
    beyond = failures - settings.login_max_failures
    if beyond < 0:
        return None
    lock = timedelta(seconds=settings.login_lock_seconds)
    if beyond > 8:  # long past the lock; also keeps the power small
        return lock
    return min(FIRST_WAIT * WAIT_GROWTH**beyond, lock)


def is_full_lock(failures: int, settings: Settings) -> bool:
    wait = wait_after(failures, settings)
    return wait is not None and wait >= timedelta(seconds=settings.login_lock_seconds)


@dataclass
class Reservation:
    """One key's share of an attempt: the failure number it got and the lock it set, if any."""

    scope: str
    key: str
    failures: int
    locked_until: datetime | None


@dataclass
class Attempt:
    """What :func:`begin` decided. When refused, ``retry_at`` (naive UTC) says when to try again."""

    account: str
    address: str
    allowed: bool
    retry_at: datetime | None = None
    full_lock: bool = False
    reservations: list[Reservation] = field(default_factory=list)

    @property
    def account_failures(self) -> int:
        return next((r.failures for r in self.reservations if r.scope.endswith(ACCOUNT)), 0)

    @property
    def wait_until(self) -> datetime | None:
        """After a failure: the latest lock this attempt set (None if it set none)."""
        locks = [r.locked_until for r in self.reservations if r.locked_until is not None]
        return max(locks) if locks else None


def _row_is(scope: str, key: str) -> Any:
    return sa.and_(_table.c.scope == scope, _table.c.key == key)


def insert_missing_row(db: Session, scope: str, key: str, last_failure_at: datetime | None) -> None:
    """Creates the key's row unless it exists; concurrent creators are fine (ON CONFLICT DO NOTHING).
    The login throttle and the request limits (portnet/request_limit.py) share the table."""
    values = {
        "scope": scope,
        "key": key,
        "failures": 0,
        "last_failure_at": last_failure_at,
        "locked_until": None,
    }
    dialect = db.get_bind().dialect.name
    statement: Any
    if dialect == "postgresql":
        statement = postgresql.insert(_table).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(_table).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - the project runs on SQLite and PostgreSQL only
        raise RuntimeError(f"login throttling does not support {dialect}")
    db.execute(statement)


def _lock_expression(failures: Any, settings: Settings, now: datetime) -> Any:
    """SQL for the lock a row gets once it holds ``failures`` (an SQL expression) failures."""
    limit = settings.login_max_failures
    lock = timedelta(seconds=settings.login_lock_seconds)
    whens = []
    count = limit
    while True:
        wait = wait_after(count, settings)
        assert wait is not None
        if wait >= lock:
            break
        whens.append((failures == count, sa.literal(now + wait, sa.DateTime())))
        count += 1
    full = sa.literal(now + lock, sa.DateTime())
    staged = sa.case(*whens, else_=full) if whens else full
    return sa.case((failures < limit, sa.null()), else_=staged)


def _reserve(db: Session, settings: Settings, scope: str, key: str, now: datetime) -> Reservation | None:
    """Counts the attempt as a failure unless the key is waiting; None if it is."""
    forget_before = now - timedelta(seconds=settings.login_failure_window_seconds)
    forgotten = sa.or_(_table.c.last_failure_at.is_(None), _table.c.last_failure_at < forget_before)
    failures = sa.case((forgotten, 1), else_=_table.c.failures + 1)
    for _ in range(2):
        insert_missing_row(db, scope, key, now)
        row = db.execute(
            sa.update(_table)
            .where(
                _row_is(scope, key),
                sa.or_(_table.c.locked_until.is_(None), _table.c.locked_until <= now),
            )
            .values(
                failures=failures,
                # A reset marks the row as recent, so the rest of a parallel burst counts on from 1.
                last_failure_at=sa.case((forgotten, now), else_=_table.c.last_failure_at),
                locked_until=_lock_expression(failures, settings, now),
            )
            .returning(_table.c.failures, _table.c.locked_until)
        ).first()
        if row is not None:
            return Reservation(scope, key, int(row[0]), row[1])
        exists = db.execute(sa.select(_table.c.scope).where(_row_is(scope, key))).first()
        if exists is not None:
            return None
        # Swept away by a concurrent clean-up between insert and update: create it again.
    return None


def _give_back(db: Session, reservation: Reservation) -> None:
    """Undoes a reservation: one failure fewer, and the lock it set (if still the same) lifted."""
    values: dict[str, Any] = {"failures": sa.case((_table.c.failures > 0, _table.c.failures - 1), else_=0)}
    if reservation.locked_until is not None:
        values["locked_until"] = sa.case(
            (_table.c.locked_until == sa.literal(reservation.locked_until, sa.DateTime()), sa.null()),
            else_=_table.c.locked_until,
        )
    db.execute(sa.update(_table).where(_row_is(reservation.scope, reservation.key)).values(**values))


def _current_lock(db: Session, keys: list[tuple[str, str]], now: datetime) -> tuple[datetime, int] | None:
    """The latest lock still running on any of the keys, with that key's failure count."""
    rows = db.execute(
        sa.select(_table.c.locked_until, _table.c.failures).where(
            sa.or_(*(_row_is(scope, key) for scope, key in keys)), _table.c.locked_until > now
        )
    ).all()
    if not rows:
        return None
    until, failures = max(rows, key=lambda r: r[0])
    return until, int(failures)


def begin(
    db: Session, settings: Settings, username: str, address: str | None, now: datetime, kind: str = ""
) -> Attempt:
    """Decides whether an attempt may check its password; if so, counts it as a failure for now.

    Commits, so that other requests and replicas see the count before the (slow) password check.
    ``kind`` keeps another action's counts apart from the logins' with the same rules ("reset-" for
    the password reset requests): asking for reset links must not lock anybody's login.
    """
    attempt = Attempt(account=account_key(username), address=address_key(address), allowed=False)
    keys = [(kind + ADDRESS, attempt.address), (kind + ACCOUNT, attempt.account)]
    waiting = _current_lock(db, keys, now)
    if waiting is None:
        for scope, key in keys:
            reservation = _reserve(db, settings, scope, key, now)
            if reservation is None:  # locked by a concurrent attempt since we looked
                for earlier in attempt.reservations:
                    _give_back(db, earlier)
                attempt.reservations = []
                waiting = _current_lock(db, keys, now)
                break
            attempt.reservations.append(reservation)
        else:
            attempt.allowed = True
    db.commit()
    if not attempt.allowed:
        until, failures = waiting or (now + timedelta(seconds=settings.login_lock_seconds), 0)
        attempt.retry_at = until
        attempt.full_lock = is_full_lock(failures, settings)
    return attempt


def succeeded(db: Session, attempt: Attempt) -> None:
    """The password was right: the account starts afresh; the address gets its attempt back."""
    for reservation in attempt.reservations:
        if reservation.scope.endswith(ACCOUNT):
            db.execute(sa.delete(_table).where(_row_is(reservation.scope, reservation.key)))
        else:
            _give_back(db, reservation)
    db.commit()


def failed(db: Session, settings: Settings, attempt: Attempt, now: datetime) -> None:
    """The password was wrong: the failure stays counted; stale rows of other keys are swept."""
    for reservation in attempt.reservations:
        db.execute(
            sa.update(_table).where(_row_is(reservation.scope, reservation.key)).values(last_failure_at=now)
        )
    forget_before = now - timedelta(seconds=settings.login_failure_window_seconds)
    db.execute(
        sa.delete(_table).where(
            _table.c.last_failure_at < forget_before,
            sa.or_(_table.c.locked_until.is_(None), _table.c.locked_until <= now),
        )
    )
    db.commit()
