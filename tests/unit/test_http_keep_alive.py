"""Our servers keep idle connections longer than any of our clients keeps them.

Otherwise a client may reuse a pooled connection at the moment the server closes it, and a request
the server never saw fails with "Server disconnected without sending a response" (it happened to
the MARSA MAROC tests' sandbox calls when both sides used 5 s).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import sandbox.__main__ as sandbox_main
from activities.http import LIMITS
from portnet.http_keep_alive import SERVER_KEEP_ALIVE_SECONDS
from portnet.launcher import web_command
from portnet.settings import ROOT

# What holds idle connections to our servers: the worker's partner clients, httpx's default (the
# sandboxes' callbacks to the portal, the tests' and the benchmarks' clients) and a load balancer (60 s).
CLIENT_KEEP_ALIVE_SECONDS = [LIMITS.keepalive_expiry, httpx.Limits().keepalive_expiry, 60.0]


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_server_waits_longer_than_every_client() -> None:
    assert all(
        seconds is not None and seconds < SERVER_KEEP_ALIVE_SECONDS for seconds in CLIENT_KEEP_ALIVE_SECONDS
    )


def test_the_portal_keeps_idle_connections_that_long_under_make_run_and_compose() -> None:
    assert _option(web_command("python"), "--timeout-keep-alive") == str(SERVER_KEEP_ALIVE_SECONDS)
    compose: dict[str, Any] = yaml.safe_load(Path(ROOT / "docker-compose.yml").read_text())
    command = [str(part) for part in compose["services"]["web"]["command"]]
    assert _option(command, "--timeout-keep-alive") == str(SERVER_KEEP_ALIVE_SECONDS)


def test_the_sandboxes_keep_idle_connections_that_long(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(sandbox_main.uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    sandbox_main.main()
    assert seen["timeout_keep_alive"] == sandbox_main.KEEP_ALIVE_SECONDS == SERVER_KEEP_ALIVE_SECONDS
