"""``python -m tests.support.concurrently NAME=COMMAND ...``: `make test`'s parts at once.

The suite's parts on SQLite and on PostgreSQL (three pytest processes each, see the Makefile), the
short chaos run and the linters share nothing but the machine (each pytest process has its own
database, Temporal servers, ports and browser; the chaos run its own stack), and each of them spends
much of its time waiting on servers: run one after the other they take about three times as long as
together on two cores. Each command runs in a shell of its
own process group, its output into ``var/test-logs/NAME.log``, printed whole when it ends (two
``pytest -q`` progress lines interleaved would be unreadable). Every part runs to its end even when
another fails; the exit status is 1 unless all of them succeeded, and a failed part's last lines are
repeated above the closing summary. Ctrl-C or SIGTERM stops them all.

``--jobs N`` (``make test TEST_JOBS=1``) caps how many run at once, in the order given.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "var" / "test-logs"
STOP_GRACE_SECONDS = 10.0
FAILURE_RECAP_LINES = 40


@dataclass
class Part:
    name: str
    command: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    started: float = 0.0
    wall: float = 0.0
    cpu: float = 0.0
    status: int | None = None

    def start(self) -> None:
        self.log = self.log_path.open("wb")
        self.started = time.monotonic()
        self.process = subprocess.Popen(  # noqa: S603 - the Makefile's own commands
            ["/bin/sh", "-c", self.command],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def poll(self) -> bool:
        """True once the part has ended (its status, wall and CPU time recorded)."""
        assert self.process is not None
        pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.process.returncode = self.status = os.waitstatus_to_exitcode(status)
        self.wall = time.monotonic() - self.started
        self.cpu = usage.ru_utime + usage.ru_stime
        assert self.log is not None
        self.log.close()
        return True

    def stop(self, sig: int) -> None:
        if self.process is not None and self.status is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def summary(self) -> str:
        verdict = "ok" if self.status == 0 else f"FAILED (exit {self.status})"
        minutes, seconds = divmod(round(self.wall), 60)
        return f"{self.name}: {verdict}, {minutes}m{seconds:02d}s, {self.cpu:.0f} s of CPU"


def parse(argv: list[str]) -> tuple[list[Part], int]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", metavar="NAME=COMMAND")
    parser.add_argument("--jobs", type=int, default=0, help="at most this many at once (0: all)")
    args = parser.parse_args(argv)
    LOGS.mkdir(parents=True, exist_ok=True)
    parts = []
    for spec in args.parts:
        name, _, command = spec.partition("=")
        if not name or not command:
            parser.error(f"{spec!r} is not NAME=COMMAND")
        parts.append(Part(name, command, LOGS / f"{name.lower()}.log"))
    return parts, args.jobs or len(parts)


def show(part: Part) -> None:
    """The part's whole output, framed, as soon as it ends."""
    print(f"\n===== {part.name}: {part.command}", flush=True)
    with part.log_path.open("rb") as log:
        sys.stdout.buffer.write(log.read())
    print(f"===== {part.summary()}", flush=True)


def run(parts: list[Part], jobs: int) -> int:
    waiting, running, done = list(parts), list[Part](), list[Part]()

    def stop_all(signum: int, _frame: FrameType | None) -> None:
        for part in running:
            part.stop(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while any(not p.poll() for p in running if p.status is None) and time.monotonic() < deadline:
            time.sleep(0.2)
        for part in running:
            part.stop(signal.SIGKILL)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    names = ", ".join(p.name for p in parts)
    at_once = "at once" if jobs >= len(parts) else f"{jobs} at a time"
    print(f"make test: {names}, {at_once}; logs in {LOGS.relative_to(ROOT)}/", flush=True)
    while waiting or running:
        while waiting and len(running) < jobs:
            part = waiting.pop(0)
            part.start()
            running.append(part)
        for part in [p for p in running if p.poll()]:
            running.remove(part)
            done.append(part)
            show(part)
        time.sleep(0.2)
    print("", flush=True)
    for part in done:
        if part.status != 0:
            recap_failure(part)
    for part in done:
        print(f"make test: {part.summary()}", flush=True)
    return 0 if all(p.status == 0 for p in done) else 1


def recap_failure(part: Part, lines: int = FAILURE_RECAP_LINES) -> None:
    """A failed part's last lines again, just above the summaries: a CI report that keeps only the
    end of the output still says why the part failed, not only that it did."""
    with part.log_path.open("rb") as log:
        tail = log.read().decode("utf-8", "replace").splitlines()[-lines:]
    print(f"----- last {len(tail)} lines of {part.name} ({os.path.relpath(part.log_path, ROOT)})", flush=True)
    print("\n".join(tail), flush=True)


def main(argv: list[str] | None = None) -> int:
    parts, jobs = parse(sys.argv[1:] if argv is None else argv)
    return run(parts, jobs)


if __name__ == "__main__":
    sys.exit(main())
