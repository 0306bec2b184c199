"""Deliveries of one partner event: exactly one processes it, the others replay its answer.

Partners redeliver on timeouts, sometimes several times at once. The claim on an event's dedupe key
must give it to one delivery, make the others wait for that answer, let the next delivery take over
an event left unanswered ("try later", or a process that died mid-way), and never deadlock on
PostgreSQL when deliveries race.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import pytest
from sqlmodel import Session

from portnet.models import PartnerCallback, Payment, utcnow
from web import callback_inbox
from web.callback_inbox import CallbackInFlight, arrive, claim, judge


def delivery(db: Session, age: timedelta = timedelta(0)) -> int:
    row = PartnerCallback(partner="fatourati", verdict="received", payload="{}", received_at=utcnow() - age)
    db.add(row)
    db.commit()
    assert row.id is not None
    return row.id


def reloaded(db: Session, callback_id: int) -> PartnerCallback:
    db.expire_all()
    row = db.get(PartnerCallback, callback_id)
    assert row is not None
    return row


@pytest.fixture
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(callback_inbox, "IN_FLIGHT_WAIT_SECONDS", 0.3)
    monkeypatch.setattr(callback_inbox, "IN_FLIGHT_POLL_SECONDS", 0.05)


async def test_a_redelivery_replays_the_answer_given(db: Session) -> None:
    first, second = delivery(db), delivery(db)
    assert await claim(first, "event:answered") is None
    await judge(first, "accepted", "ANSWER", "event:answered")
    earlier = await claim(second, "event:answered")
    assert earlier is not None and earlier.id == first and earlier.answer == "ANSWER"
    row = reloaded(db, second)
    assert (row.verdict, row.answer, row.dedupe_key) == ("replay", "ANSWER", None)


async def test_a_delivery_in_flight_is_not_taken_over(db: Session, short_wait: None) -> None:
    first, second = delivery(db), delivery(db)
    assert await claim(first, "event:in-flight") is None
    with pytest.raises(CallbackInFlight):
        await claim(second, "event:in-flight")
    assert reloaded(db, first).dedupe_key == "event:in-flight"
    assert reloaded(db, second).verdict == "in_flight"


async def test_an_event_answered_try_later_is_taken_over(db: Session) -> None:
    first, second = delivery(db), delivery(db)
    assert await claim(first, "event:retry") is None
    await judge(first, "temporal_unavailable", "FAILURE", "event:retry")
    assert await claim(second, "event:retry") is None
    assert reloaded(db, first).dedupe_key is None
    assert (reloaded(db, second).dedupe_key, reloaded(db, second).verdict) == ("event:retry", "processing")


async def test_an_event_left_processing_by_a_dead_process_is_taken_over(db: Session) -> None:
    dead, second = delivery(db, age=callback_inbox.STALE_PROCESSING + timedelta(seconds=1)), delivery(db)
    assert await claim(dead, "event:stale") is None
    assert await claim(second, "event:stale") is None
    assert reloaded(db, second).dedupe_key == "event:stale"


async def test_the_waiting_delivery_gets_the_answer_once_given(db: Session) -> None:
    first, second = delivery(db), delivery(db)
    assert await claim(first, "event:wait") is None
    waiting = asyncio.create_task(claim(second, "event:wait"))
    await asyncio.sleep(0)  # the second delivery finds the event in flight and waits
    await judge(first, "accepted", "DONE", "event:wait")
    earlier = await asyncio.wait_for(waiting, timeout=callback_inbox.IN_FLIGHT_WAIT_SECONDS)
    assert earlier is not None and earlier.answer == "DONE"


async def test_concurrent_deliveries_one_owner_no_deadlock(db: Session) -> None:
    """Twelve deliveries at once, the owner giving up twice: always one owner, the rest replays."""
    ids = [delivery(db) for _ in range(12)]

    async def deliver(callback_id: int) -> str:
        try:
            earlier = await claim(callback_id, "event:race")
        except CallbackInFlight:
            return "in_flight"
        if earlier is not None:
            return f"replay:{earlier.answer}"
        owners.append(callback_id)
        # The first two owners meet an unreachable Temporal; the third answers for good.
        await judge(
            callback_id, *(("temporal_unavailable", "FAILURE") if len(owners) < 3 else ("accepted", "OK"))
        )
        return "owner"

    owners: list[int] = []
    results = await asyncio.gather(*[deliver(i) for i in ids])
    assert results.count("owner") == len(owners) and 1 <= len(owners) <= 3
    final = [reloaded(db, i) for i in ids]
    assert [r.id for r in final if r.dedupe_key == "event:race"] == [owners[-1]]
    assert all(r.answer in ("OK", "FAILURE", None) for r in final)
    assert set(results) - {"owner"} <= {"replay:OK", "in_flight"}


def _genuine_body() -> callback_inbox.RawBody:
    body = b"oid=PN00000000C0DE&TransId=T1"
    return callback_inbox.RawBody(
        kept=body, sha256=hashlib.sha256(body).hexdigest(), truncated=False, scrubbed=False, received=body
    )


def _processing(payment: Payment | None) -> tuple[str, str | None]:
    return "processing", None


async def test_a_genuine_arrival_is_kept_and_holds_its_event_in_one_transaction(db: Session) -> None:
    arrival = await arrive(
        "cmi", {"oid": "PN00000000C0DE"}, "PN00000000C0DE", _genuine_body(), _processing, "event:arrival"
    )
    assert arrival.owner and arrival.payment is None
    row = reloaded(db, arrival.callback_id)
    assert (row.verdict, row.answer, row.dedupe_key) == ("processing", None, "event:arrival")
    assert (row.payment_id, row.raw_body) == ("PN00000000C0DE", b"oid=PN00000000C0DE&TransId=T1")


async def test_a_redelivery_arriving_while_its_event_is_held_waits_for_the_answer(db: Session) -> None:
    first = await arrive("cmi", {}, "PN00000000C0DE", _genuine_body(), _processing, "event:held")
    second = await arrive("cmi", {}, "PN00000000C0DE", _genuine_body(), _processing, "event:held")
    assert first.owner and not second.owner
    row = reloaded(db, second.callback_id)
    assert (row.verdict, row.dedupe_key) == ("received", None)  # kept, the key left to its holder
    waiting = asyncio.create_task(claim(second.callback_id, "event:held"))
    await asyncio.sleep(0)
    await judge(first.callback_id, "accepted", "ACTION=POSTAUTH", "event:held")
    earlier = await asyncio.wait_for(waiting, timeout=callback_inbox.IN_FLIGHT_WAIT_SECONDS)
    assert earlier is not None and earlier.id == first.callback_id
    assert reloaded(db, second.callback_id).verdict == "replay"


async def test_an_arrival_judged_on_our_state_holds_nothing(db: Session) -> None:
    arrival = await arrive(
        "cmi", {}, "PN00000000C0DE", _genuine_body(), lambda _: ("unknown_order", "APPROVED"), "event:unknown"
    )
    assert not arrival.owner and (arrival.verdict, arrival.answer) == ("unknown_order", "APPROVED")
    row = reloaded(db, arrival.callback_id)
    assert (row.verdict, row.answer, row.dedupe_key) == ("unknown_order", "APPROVED", None)


async def test_concurrent_arrivals_of_one_event_give_it_one_owner(db: Session) -> None:
    """Deliveries arriving together: one holds the event from its insert, the others are kept unheld."""
    body = _genuine_body()
    arrivals = await asyncio.gather(
        *[arrive("cmi", {}, "PN00000000C0DE", body, _processing, "event:together") for _ in range(8)]
    )
    owners = [a for a in arrivals if a.owner]
    assert len(owners) == 1
    rows = [reloaded(db, a.callback_id) for a in arrivals]
    assert [r.id for r in rows if r.dedupe_key == "event:together"] == [owners[0].callback_id]
    assert sorted(r.verdict for r in rows) == ["processing"] + ["received"] * 7
