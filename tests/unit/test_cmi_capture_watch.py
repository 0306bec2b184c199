"""The CMI capture watch as the activity worker runs it: the real clock and pauses, a worker clock
that disagrees with the workflow's, and what the workflow is told about when the watch began."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import ActivityEnvironment

from activities import cmi_card
from activities.cmi_card import (
    AUTHORISED,
    CAPTURED,
    WATCH_LIMIT,
    CaptureWatchInput,
    CardOrderInput,
    CardOrderStatus,
)


def bank_answers(states: list[str], looks: list[float]) -> object:
    async def check_card_capture(inp: CardOrderInput) -> CardOrderStatus:
        looks.append(time.monotonic())
        state = states.pop(0) if len(states) > 1 else states[0]
        return CardOrderStatus(state, state)

    return check_card_capture


async def test_a_worker_clock_behind_the_servers_still_watches_at_most_its_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The workflow's end is an hour away by this worker's clock (it is an hour behind): the watch
    stops after WATCH_LIMIT anyway, on an authorisation alone, and the workflow's timers go on."""
    looks: list[float] = []
    monkeypatch.setattr(cmi_card, "check_card_capture", bank_answers([AUTHORISED], looks))
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    started = time.monotonic()
    watch = await ActivityEnvironment().run(cmi_card.watch_card_capture, CaptureWatchInput("P1", "T1", until))
    took = time.monotonic() - started
    assert watch.state == AUTHORISED
    assert WATCH_LIMIT.total_seconds() <= took < 60  # not the hour (a loaded box stretches the pauses)
    assert looks[-1] - started >= WATCH_LIMIT.total_seconds()  # the last look begins at the limit


async def test_the_watch_tells_when_it_was_scheduled_and_stops_at_the_capture(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looks: list[float] = []
    monkeypatch.setattr(cmi_card, "check_card_capture", bank_answers([AUTHORISED, CAPTURED], looks))
    env = ActivityEnvironment()
    until = (datetime.now(UTC) + timedelta(milliseconds=400)).isoformat()
    watch = await env.run(cmi_card.watch_card_capture, CaptureWatchInput("P1", "T1", until))
    assert (watch.state, len(looks)) == (CAPTURED, 2)
    assert looks[1] - looks[0] >= 0.009  # the first pause, 10 ms
    scheduled = datetime.fromisoformat(watch.scheduled_at)
    assert scheduled.tzinfo is not None
    assert scheduled == env.info.scheduled_time.replace(tzinfo=scheduled.tzinfo)
