"""Waiting for a payment's status to change: every waiting client of a process shares one check loop.

The status page reloaded itself every 3 s and API clients poll ``GET /api/v1/payments/{id}``: each
poll is a request, ledger reads and, for a live attempt, a workflow query (a workflow task on a
worker, queued behind the payments' own). A long-poll (``?wait=25&since=<status>``) answers as soon
as the status differs from the one the client saw, or after ``wait`` seconds with the unchanged
status. Meanwhile its client costs a pending future here; one loop per process looks after every
watched payment for all their waiters:

- the ledger, for every watched payment in one SELECT each ``LEDGER_SECONDS``: a final status
  (written by the settlement or the release before the workflow moves on) and the statuses the
  activities write (Fatourati's reference issued, a cheque declared) are seen there, no query;
- the workflow, at once when this process has just updated or signalled it (``wake``, from
  ``web.attempts.forget_view``: a partner's callback, a cancel), and otherwise at most every
  ``QUERY_SECONDS`` per payment whatever its number of waiters: the transitions the ledger does not
  record (the payer awaited, the approval awaiting its confirmation) are seen at once when they come
  through this process, within ``QUERY_SECONDS`` when they come through another replica.

Nothing is held while waiting: no database connection (each read is short, in a worker thread) and
no thread. Waiters are counted per user and per process and refused beyond ``MAX_WAITERS_PER_USER``
and ``MAX_WAITERS`` (a 429, the client polls plainly meanwhile); a waiter whose client goes away is
cancelled and leaves its count (``unless_gone``). The web layer writes no payment state: this reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from portnet.db import get_engine
from portnet.i18n import N_
from portnet.models import Payment
from portnet.statuses import PaymentStatus
from workflows.payment import PaymentWorkflow
from workflows.types import PaymentView

log = logging.getLogger("portnet.web.status_watch")

LEDGER_SECONDS = 0.5
QUERY_SECONDS = 3.0
MAX_WAIT_SECONDS = 30
MAX_WAITERS = 2000
MAX_WAITERS_PER_USER = 8
RETRY_AFTER_SECONDS = 3
_IDS_PER_SELECT = 500  # far below either database's limit of bound parameters
TOO_MANY_WAITERS = N_(
    "Trop d'attentes en cours sur l'état des paiements : réessayez dans quelques secondes, "
    "ou sans le paramètre « wait »."
)
T = TypeVar("T")


class WaitRefused(Exception):
    """Beyond the caps: the client is told to come back rather than be queued."""

    message = TOO_MANY_WAITERS
    code = "too_many_waiters"


@dataclass
class _Watched:
    """One watched payment: what it was last seen as, and the event its waiters wait on."""

    workflow_id: str
    status: str  # the workflow's while the attempt lives, the ledger's once it is final
    ledger_status: str
    view: PaymentView | None  # the workflow's last answer (None: read the ledger afresh)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    waiters: int = 0
    queried_at: float = field(default_factory=time.monotonic)
    due: bool = False  # this process changed the attempt: ask the workflow at the next turn


class StatusWatch:
    """The process's watched payments and the one task that checks them while anyone waits."""

    def __init__(self) -> None:
        self._watched: dict[str, _Watched] = {}
        self._users: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._kick: asyncio.Event | None = None
        self._arrived: asyncio.Event | None = None
        self._client: Any = None

    def waiting(self, payment_id: str | None = None) -> int:
        """Waiters of one payment, or of all."""
        if payment_id is not None:
            entry = self._watched.get(payment_id)
            return entry.waiters if entry is not None else 0
        return sum(self._users.values())

    def known(self, payment_id: str, ledger_status: str, since: str) -> PaymentView | None:
        """The watcher's latest view of a watched attempt when it still shows ``since``, or None.

        A new long-poll on a payment others already wait on starts from it rather than asking the
        workflow again: it is as fresh as the loop's checks (a final status in the ledger, the
        caller's ``ledger_status``, is never hidden by it). Any other answer than "unchanged" comes
        from a read of the caller's own.
        """
        entry = self._watched.get(payment_id)
        if entry is None or entry.view is None or self._loop is not asyncio.get_running_loop():
            return None
        if PaymentStatus(ledger_status).is_final or ledger_status != entry.ledger_status:
            return None
        if entry.status != since or entry.view.status != since:
            return None
        return replace(entry.view)

    async def until_waiting(self, payment_id: str, count: int) -> None:
        """Until ``count`` requests wait on the payment: tests and benchmarks change it only then."""
        self._bind()
        assert self._arrived is not None
        while self.waiting(payment_id) < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def wait(
        self,
        client: Any,
        current: PaymentView,
        since: str,
        seconds: float,
        user_key: str,
        ledger_status: str | None = None,
    ) -> PaymentView | None:
        """Until the status differs from ``since`` or ``seconds`` have passed.

        ``current`` is the attempt as just read (``web.attempts.read_view``), ``ledger_status`` its
        row's status then (a live card attempt's row says ``started`` all along). Returns the view to
        answer with, or None when the attempt's final status was seen in the ledger: the caller
        reads the ledger's full view then.
        """
        if current.status != since or PaymentStatus(current.status).is_final:
            return current
        self._bind()
        if self.waiting() >= MAX_WAITERS or self._users[user_key] >= MAX_WAITERS_PER_USER:
            raise WaitRefused
        if client is not None:
            self._client = client
        entry = self._watched.get(current.id)
        if entry is None:
            entry = _Watched(
                workflow_id=current.workflow_id,
                status=current.status,
                ledger_status=ledger_status or current.status,
                view=None if current.from_ledger else replace(current),
            )
            self._watched[current.id] = entry
        elif current.status != entry.status and not current.from_ledger:
            # This request read the workflow after the loop last did: its waiters hear of it now.
            entry.queried_at = time.monotonic()
            _seen(entry, current.status, replace(current))
        entry.waiters += 1
        self._users[user_key] += 1
        assert self._arrived is not None
        self._arrived.set()
        self._start()
        try:
            deadline = time.monotonic() + seconds
            while entry.status == since:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(entry.changed.wait(), remaining)
                except TimeoutError:
                    break
        finally:
            entry.waiters -= 1
            self._users[user_key] -= 1
            if self._users[user_key] <= 0:
                del self._users[user_key]
            if entry.waiters <= 0 and self._watched.get(current.id) is entry:
                del self._watched[current.id]
        if entry.view is not None and entry.view.status == entry.status:
            return replace(entry.view)
        return None if PaymentStatus(entry.status).is_final else current

    def wake(self, payment_id: str) -> None:
        """This process has just updated or signalled the attempt: its waiters' loop asks at once."""
        entry = self._watched.get(payment_id)
        if entry is None or self._loop is None or self._kick is None:
            return
        entry.due = True
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._kick.set()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._kick.set)

    def _bind(self) -> None:
        """State belongs to one event loop (a process has one; each test has its own)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._watched.clear()
            self._users.clear()
            self._loop, self._task, self._kick, self._arrived = loop, None, asyncio.Event(), asyncio.Event()
            self._client = None

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="payment-status-watch")

    async def _run(self) -> None:
        assert self._kick is not None
        while self._watched:
            try:
                await self._turn()
            except Exception:  # noqa: BLE001 - the waiters keep their timeout; the next turn tries again
                log.exception("payment status watch: a turn failed")
            if not self._watched:
                break
            try:
                await asyncio.wait_for(self._kick.wait(), LEDGER_SECONDS)
            except TimeoutError:
                pass
            self._kick.clear()

    async def _turn(self) -> None:
        ids = list(self._watched)
        ledger = await run_in_threadpool(_ledger_statuses, ids)
        now = time.monotonic()
        asking: list[tuple[str, _Watched]] = []
        for payment_id in ids:
            entry = self._watched.get(payment_id)
            status = ledger.get(payment_id)
            if entry is None or status is None:
                continue
            if PaymentStatus(status).is_final:
                _seen(entry, status, None)
                continue
            if status != entry.ledger_status:
                entry.ledger_status, entry.due = status, True
            if entry.due or now - entry.queried_at >= QUERY_SECONDS:
                asking.append((payment_id, entry))
        if asking:
            await asyncio.gather(*(self._ask(payment_id, entry) for payment_id, entry in asking))

    async def _ask(self, payment_id: str, entry: _Watched) -> None:
        entry.due, entry.queried_at = False, time.monotonic()
        client = self._client
        if client is None:
            if entry.ledger_status != entry.status:  # Temporal unreachable: the ledger's word
                _seen(entry, entry.ledger_status, None)
            return
        try:
            view = await client.get_workflow_handle(entry.workflow_id).query(PaymentWorkflow.state)
        except Exception as err:  # noqa: BLE001 - RPC, query or connection errors: asked again later
            log.info("payment status watch: %s did not answer (%s)", payment_id, err)
            return
        if view is not None and not PaymentStatus(entry.status).is_final:
            _seen(entry, view.status, view)


def _seen(entry: _Watched, status: str, view: PaymentView | None) -> None:
    """Records what a check found; waiters are woken only when the status moved."""
    entry.view = view
    if status != entry.status:
        entry.status = status
        entry.changed.set()
        entry.changed = asyncio.Event()


def _ledger_statuses(ids: list[str]) -> dict[str, str]:
    """The ledger's status of each payment, in one SELECT per few hundred ids."""
    found: dict[str, str] = {}
    with Session(get_engine()) as session:
        for start in range(0, len(ids), _IDS_PER_SELECT):
            chunk = ids[start : start + _IDS_PER_SELECT]
            rows = session.exec(select(Payment.id, Payment.status).where(col(Payment.id).in_(chunk))).all()
            found.update({payment_id: status for payment_id, status in rows})
    return found


class ClientGone(Exception):
    """The client of a waiting request disconnected: its waiter was cancelled."""


async def unless_gone(request: Request, waiting: Awaitable[T]) -> T:
    """``waiting``'s result, or ``ClientGone`` once the client has gone away (the waiter cancelled).

    A plain answer is not cancelled when its client disconnects: without this, a closed tab would
    keep its place (and its count) until the timeout.
    """
    work = asyncio.ensure_future(waiting)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work, gone):
            if not task.done():
                task.cancel()
    if not work.done() or work.cancelled():
        await asyncio.gather(work, return_exceptions=True)  # its ``finally`` has run
        raise ClientGone
    return work.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


WATCH = StatusWatch()


def wake(payment_id: str) -> None:
    WATCH.wake(payment_id)
