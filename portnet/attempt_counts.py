"""Attempts started and ended, counted where the ledger writes them: ORM events on ``Payment``.

Every writer of an attempt's row (the ledger's hold, settle and release, reconciliation, late
settlements...) goes through a SQLAlchemy session, so the worker counts them all here, without a
line in each activity: a ``Payment`` inserted is an attempt started (``portnet_attempts_started``),
its status reaching a final value (succeeded, failed, expired, cancelled) an attempt ended
(``portnet_attempts_ended``, by that status; a refusal at once is both). Counted after the commit
only, and once per transition, so a retried activity that finds the work done counts nothing.
The worker installs it (worker.py); the records go to its SDK meter (portnet/metrics.py).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portnet import metrics
from portnet.models import Payment
from portnet.statuses import PaymentStatus

_KEY = "portnet_attempt_counts"


def _final(status: str | None) -> bool:
    try:
        return status is not None and PaymentStatus(status).is_final
    except ValueError:
        return False


def _collect(session: Session, _context: Any, _instances: Any) -> None:
    pending: list[tuple[str, str, str]] = session.info.setdefault(_KEY, [])
    for row in session.new:
        if isinstance(row, Payment):
            pending.append(("started", row.channel, ""))
            if _final(row.status):
                pending.append(("ended", row.channel, row.status))
    for row in session.dirty:
        if isinstance(row, Payment):
            history = sa.inspect(row).attrs.status.history
            before = history.deleted[0] if history.deleted else None
            if history.added and _final(row.status) and not _final(before):
                pending.append(("ended", row.channel, row.status))


def _emit(session: Session) -> None:
    for event, channel, status in session.info.pop(_KEY, []):
        if event == "started":
            metrics.attempt_started(channel)
        else:
            metrics.attempt_ended(channel, status)


def _forget(session: Session, *_: Any) -> None:
    session.info.pop(_KEY, None)


def install() -> None:
    """Idempotent: the listeners are registered once per process."""
    if sa.event.contains(Session, "before_flush", _collect):
        return
    sa.event.listen(Session, "before_flush", _collect)
    sa.event.listen(Session, "after_commit", _emit)
    sa.event.listen(Session, "after_rollback", _forget)
