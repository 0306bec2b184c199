"""The partners' outgoing calls to us (callbacks, notifications, acknowledgements), kept until done.

A partner that could not reach the merchant tries again later, even after its own restart. So each
call is first written down as a ``Delivery`` in the same transaction as the state change it reports
(an approved card, a paid cash code, an acknowledged notice), then tried: the first try inline when
the partner does it before answering (CMI before redirecting the browser), the others in the
background with exponential backoff. On start-up, ``Outbox.resume()`` picks up every delivery still
pending, so a restart of the sandboxes delays a callback but never loses it.

Each kind of delivery (its ``purpose``) has its handler, given by the partner's module: ``before``
may call a scheduled delivery off (an emitter whose automatic acknowledgement was suspended), and
``after`` records each try on the partner's own record and says whether the delivery is done.
Due times are wall-clock seconds (``time.time()``), stored, so that they survive a restart.

Before its first try, each delivery draws its partner's delivery fault (sandbox/faults.py), once:
dropped (never sent: state ``dropped``), duplicated (a copy, ``copy_of`` this one, sent once more,
at once or after ``duplicate_delay_seconds``) or held back (out of order: later events overtake it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sandbox import faults
from sandbox.runtime import Background, Outbound, log
from sandbox.store import Record, Store, Tx

DeliveryState = Literal["pending", "done", "abandoned", "cancelled", "dropped"]


class Delivery(Record):
    kind = "delivery"

    id: int
    purpose: str
    subject: str  # the purpose's own reference: an order and transaction, a notice...
    url: str
    body: str
    headers: dict[str, str]
    due_at: float
    tries: int = 0
    max_tries: int
    backoff_seconds: float
    state: DeliveryState = "pending"
    fault_drawn: bool = False
    copy_of: int | None = None  # a duplicate sent by fault injection

    def key(self) -> str:
        return str(self.id)

    def secondary(self) -> str:
        return self.state


@dataclass(frozen=True)
class Reply:
    """What one try got back: an HTTP answer, or the error that stood in its way."""

    at: datetime
    status_code: int | None
    text: str | None
    error: str | None = None


@dataclass(frozen=True)
class Purpose:
    """``after`` returns True when nothing more is to be sent (delivered, or refused for good)."""

    after: Callable[[Tx, Delivery, Reply], bool]
    before: Callable[[Tx, Delivery], bool] | None = None
    abandoned: Callable[[Tx, Delivery], None] | None = None


def new_delivery(
    tx: Tx,
    purpose: str,
    subject: str,
    url: str,
    body: str,
    headers: dict[str, str],
    max_tries: int,
    backoff_seconds: float,
    delay_seconds: float = 0.0,
) -> Delivery:
    """Written in the caller's transaction, with the state change it reports."""
    delivery = Delivery(
        id=tx.next_number("delivery"),
        purpose=purpose,
        subject=subject,
        url=url,
        body=body,
        headers=headers,
        due_at=time.time() + max(0.0, delay_seconds),
        max_tries=max(1, max_tries),
        backoff_seconds=backoff_seconds,
    )
    tx.put(delivery)
    return delivery


def cancel_delivery(tx: Tx, delivery_id: int | None) -> None:
    """A pending delivery that must not go out any more (its runner sees it and stops)."""
    if delivery_id is None:
        return
    delivery = tx.get(Delivery, str(delivery_id))
    if delivery is not None and delivery.state == "pending":
        delivery.state = "cancelled"
        tx.put(delivery)


class Outbox:
    def __init__(self, store: Store, outbound: Outbound, background: Background) -> None:
        self.store = store
        self.outbound = outbound
        self.background = background
        self.purposes: dict[str, Purpose] = {}

    def register(self, name: str, purpose: Purpose) -> None:
        self.purposes[name] = purpose

    async def dispatch(self, delivery_id: int, inline_tries: int = 1, wait: bool = False) -> None:
        """Up to ``inline_tries`` tries now (if due), then the rest of the schedule: awaited when
        ``wait``, else in the background."""
        for _ in range(inline_tries):
            delivery = await self._load(delivery_id)
            if delivery is None or delivery.state != "pending" or delivery.due_at > time.time():
                break
            await self._try(delivery)
        remaining = await self._load(delivery_id)
        if remaining is None or remaining.state != "pending":
            return
        if wait:
            await self._run(delivery_id)
        else:
            self.background.spawn(self._run(delivery_id), name=f"delivery-{delivery_id}")

    async def resume(self) -> int:
        """Every delivery left pending by an earlier run goes on; returns how many."""
        pending = await self.store.call(lambda tx: tx.find(Delivery, "pending"))
        for delivery in pending:
            self.background.spawn(self._run(delivery.id), name=f"delivery-{delivery.id}")
        if pending:
            log.info("sandbox: %d pending deliveries resumed", len(pending))
        return len(pending)

    async def release_held(self) -> int:
        """Every pending delivery due later (held back, a delayed duplicate, a retry's backoff) goes
        now: lets a test or a person play "the late callback arrives" without waiting. Returns how many."""
        now = time.time()

        def due_now(tx: Tx) -> list[int]:
            held = [d for d in tx.find(Delivery, "pending") if d.due_at > now]
            for delivery in held:
                delivery.due_at = now
                tx.put(delivery)
            return [d.id for d in held]

        released = await self.store.call(due_now)
        names = {f"delivery-{i}" for i in released}
        for task in [t for t in self.background.tasks if t.get_name() in names]:
            task.cancel()  # asleep until the old due time: the new runner below takes over
        for delivery_id in released:
            self.background.spawn(self._run(delivery_id), name=f"delivery-{delivery_id}")
        return len(released)

    async def _load(self, delivery_id: int) -> Delivery | None:
        return await self.store.call(lambda tx: tx.get(Delivery, str(delivery_id)))

    async def _run(self, delivery_id: int) -> None:
        while True:
            delivery = await self._load(delivery_id)
            if delivery is None or delivery.state != "pending":
                return
            wait = delivery.due_at - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue  # cancelled meanwhile? read it again
            await self._try(delivery)

    async def _try(self, delivery: Delivery) -> None:
        purpose = self.purposes[delivery.purpose]
        if not delivery.fault_drawn and not await self._fault_allows(delivery):
            return
        if purpose.before is not None:
            before = purpose.before

            def go_ahead(tx: Tx) -> bool:
                current = tx.get(Delivery, delivery.key())
                if current is None or current.state != "pending":
                    return False
                if before(tx, current):
                    return True
                current.state = "cancelled"
                tx.put(current)
                return False

            if not await self.store.call(go_ahead):
                return
        reply = await self._post(delivery)

        def record(tx: Tx) -> None:
            current = tx.get(Delivery, delivery.key())
            if current is None or current.state != "pending":
                return  # cancelled while the call was out: the newer delivery speaks for it
            current.tries += 1
            if purpose.after(tx, current, reply):
                current.state = "done"
            elif current.tries >= current.max_tries:
                current.state = "abandoned"
                if purpose.abandoned is not None and current.copy_of is None:
                    purpose.abandoned(tx, current)
                log.warning(
                    "sandbox: %s %s abandoned after %d tries", current.purpose, current.subject, current.tries
                )
            else:
                current.due_at = time.time() + current.backoff_seconds * 2 ** (current.tries - 1)
            tx.put(current)

        await self.store.call(record)

    async def _fault_allows(self, delivery: Delivery) -> bool:
        """Draws the delivery's fault (once); False when this try must not go out now."""

        def draw(tx: Tx) -> tuple[str | None, Delivery | None]:
            current = tx.get(Delivery, delivery.key())
            if current is None or current.state != "pending":
                return "gone", None
            if current.fault_drawn:
                return None, None
            current.fault_drawn = True
            drawn = faults.draw_delivery_fault(tx, current.purpose)
            kind: str | None = None if drawn is None else drawn[0]
            copy: Delivery | None = None
            if drawn is not None and kind == "drop":
                current.state = "dropped"
            elif drawn is not None and kind == "reorder":
                current.due_at = time.time() + drawn[1].reorder_hold_seconds
            elif drawn is not None:
                copy = current.model_copy(
                    update={"id": tx.next_number("delivery"), "copy_of": current.id, "max_tries": 1,
                            "due_at": time.time() + drawn[1].duplicate_delay_seconds},
                )  # fmt: skip
                tx.put(copy)
            tx.put(current)
            return kind, copy

        kind, copy = await self.store.call(draw)
        if kind not in (None, "gone"):
            log.warning("sandbox: fault %s on %s %s", kind, delivery.purpose, delivery.subject)
        if copy is not None:
            self.background.spawn(self._run(copy.id), name=f"delivery-{copy.id}")
        delivery.fault_drawn = True
        return kind in (None, "duplicate")

    async def _post(self, delivery: Delivery) -> Reply:
        at = datetime.now(UTC)
        try:
            answer = await self.outbound.post(
                delivery.url, content=delivery.body.encode("utf-8"), headers=delivery.headers
            )
            return Reply(at=at, status_code=answer.status_code, text=answer.text)
        except Exception as exc:  # whatever the merchant's server does, the partner keeps going
            return Reply(at=at, status_code=None, text=None, error=f"{type(exc).__name__}: {exc}")
