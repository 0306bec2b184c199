"""What every served process loads at start leaves the cyclic collector's sight once (portnet/heap.py)."""

from __future__ import annotations

import gc

import pytest

import web.app
from portnet.heap import settle_heap
from portnet.settings import get_settings


def test_the_suites_process_froze_what_it_loaded_before_the_tests() -> None:
    # tests/conftest.py settles the heap once the tests are collected.
    assert gc.get_freeze_count() > 10_000


def test_a_second_settling_freezes_nothing_more() -> None:
    frozen = gc.get_freeze_count()
    leftover: list[list[int]] = [[] for _ in range(100)]  # tracked objects made since then
    settle_heap()
    assert gc.get_freeze_count() == frozen
    assert leftover


async def test_the_portal_settles_its_heap_when_its_server_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    settled: list[bool] = []
    monkeypatch.setattr(web.app, "settle_heap", lambda: settled.append(True))
    app = web.app.create_app(get_settings())
    assert settled == []  # building the app is not serving it: tests build many
    async with app.router.lifespan_context(app):
        assert settled == [True]
