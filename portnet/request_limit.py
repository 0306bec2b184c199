"""A fixed window of requests per client address, counted in the database (public pages' rate limits).

The public receipt verification page uses it: each client address may make ``limit`` look-ups per
``window``; the next ones are refused until the window ends, before anything is looked up. It counts
in the login throttling's table (portnet/login_throttle.py: same keys for addresses, one row per
scope and key), so every portal replica sees the same counts, with one conditional UPDATE per
request: a burst of parallel requests gets one number each, and those past the limit are refused.

Rows: ``failures`` is the count in the window, ``last_failure_at`` the window's start. A row whose
window ended is started afresh by the next request; the login throttling's clean-up sweeps rows
whose window started more than its own window ago.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from portnet.login_throttle import address_key, insert_missing_row
from portnet.models import LoginThrottle

_table: Any = LoginThrottle.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    # When the window ends (naive UTC): a refused client may come back then.
    retry_at: datetime

    def retry_after_seconds(self, now: datetime) -> int:
        return max(1, int((self.retry_at - now).total_seconds() + 0.999))


def count_request(
    db: Session, scope: str, address: str | None, limit: int, window: timedelta, now: datetime
) -> Verdict:
    """Counts one request of ``address`` under ``scope``; ``allowed`` while within ``limit``. Commits."""
    key = address_key(address)
    started_before = now - window
    fresh = sa.or_(_table.c.last_failure_at.is_(None), _table.c.last_failure_at <= started_before)
    row = None
    for _ in range(2):
        insert_missing_row(db, scope, key, None)
        row = db.execute(
            sa.update(_table)
            .where(_table.c.scope == scope, _table.c.key == key)
            .values(
                failures=sa.case((fresh, 1), else_=_table.c.failures + 1),
                last_failure_at=sa.case((fresh, now), else_=_table.c.last_failure_at),
            )
            .returning(_table.c.failures, _table.c.last_failure_at)
        ).first()
        if row is not None:
            break
        # Swept by a concurrent clean-up between insert and update: create it again.
    db.commit()
    if row is None:  # pragma: no cover - swept twice in a row
        return Verdict(True, 1, now + window)
    count, start = int(row[0]), row[1]
    return Verdict(count <= limit, count, start + window)
