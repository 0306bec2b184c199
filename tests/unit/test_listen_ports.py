"""The ports the suites' and benchmarks' servers listen on (bench/_common.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bench import _common
from bench._common import LISTEN_PORTS, free_port, free_ports


def test_ports_are_distinct_and_below_the_kernels_ephemeral_range() -> None:
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    low = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32768
    assert LISTEN_PORTS.stop <= low
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert all(port in LISTEN_PORTS for port in ports)


def test_a_port_something_listens_on_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = int(taken.getsockname()[1])
        tries = iter([busy, busy, LISTEN_PORTS[0]])
        monkeypatch.setattr(_common.random, "choice", lambda _: next(tries))
        assert free_port() == LISTEN_PORTS[0]
