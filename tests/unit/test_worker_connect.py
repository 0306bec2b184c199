"""A worker started while Temporal restarts (a crash, a deployment of the server) waits for it instead
of exiting: ``worker.connect_patiently``. No server is started: a port nobody listens on stands for
Temporal down, and the waits run on a virtual clock."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import Client

from portnet.settings import get_settings
from portnet.temporal_codec import data_converter
from worker import CONNECT_PATIENCE, connect_patiently


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def refused_then(answers: list[Any]) -> Any:
    """A ``connect`` that refuses (as the SDK does when nothing listens) until its answer comes."""

    async def connect() -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return connect


REFUSED = RuntimeError("Failed client connect: Server connection error: tcp connect error")


async def test_a_worker_waits_for_temporal_to_come_back() -> None:
    clock, client = VirtualClock(), object()

    got = await connect_patiently(
        refused_then([REFUSED, REFUSED, REFUSED, client]), sleep=clock.sleep, clock=clock
    )

    assert got is client
    assert clock.pauses == [0.2, 0.5, 1.0]  # quick at first: a restart takes a second or two


async def test_a_temporal_that_stays_down_fails_the_worker_after_its_patience() -> None:
    clock = VirtualClock()

    with pytest.raises(RuntimeError, match="Failed client connect"):
        await connect_patiently(refused_then([REFUSED] * 100), sleep=clock.sleep, clock=clock)

    assert CONNECT_PATIENCE.total_seconds() <= clock.now < CONNECT_PATIENCE.total_seconds() + 2.0
    assert max(clock.pauses) == 2.0


async def test_what_the_sdk_raises_when_nothing_listens_is_what_the_worker_waits_through() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # closed again before the connect: nothing listens there
    clock = VirtualClock()

    with pytest.raises(RuntimeError, match="Failed client connect"):
        await connect_patiently(
            lambda: Client.connect(f"127.0.0.1:{port}", data_converter=data_converter(get_settings())),
            patience=timedelta(seconds=1),
            sleep=clock.sleep,
            clock=clock,
        )

    assert clock.pauses == [0.2, 0.5, 1.0]  # the refusal was waited through, not raised at once
