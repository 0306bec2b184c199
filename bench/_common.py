"""What the benchmarks share: ports, child processes, percentiles, tables and result files.

Every child runs in its own process group so that stopping it also stops whatever it spawned, and
every stop is by process group id of a child we started ourselves, never by name.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# Servers of a benchmark, the chaos run or a test suite listen on ports below the kernel's ephemeral
# range (32768 to 60999 on Linux), where no outgoing connection is given one between our check and
# the server's bind. A port the kernel handed out (bind to port 0) was once taken by another process
# in that moment, with `make test`'s seven parts running at once, and a suite's sandbox never started.
LISTEN_PORTS = range(20_000, 32_000)


def free_port() -> int:
    """A port nothing listens on now, picked at random so that parallel runs rarely try the same."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Distinct ports: each socket stays bound until all are chosen."""
    sockets: list[socket.socket] = []
    try:
        while len(sockets) < count:
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", random.choice(LISTEN_PORTS)))
            except OSError:
                s.close()
                continue
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def machine_cpu_seconds() -> float:
    """CPU time used by every process of the machine so far (Linux /proc/stat), in seconds."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def write_results(name: str, payload: Mapping[str, Any], argv: Sequence[str] | None = None) -> Path:
    """bench/results/<name>-<UTC stamp>.json, and a copy as <name>-latest.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args = sys.argv[1:] if argv is None else list(argv)
    body = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "-m", f"bench.{name}", *args]),
        "machine": {**machine(), "loadavg_at_end": os.getloadavg()},
        **payload,
    }
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
    (RESULTS / f"{name}-latest.json").write_text(json.dumps(body, indent=2, default=str) + "\n")
    return path


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def cpu_seconds(self) -> float:
        """user + system CPU of the process (Linux /proc), children excluded."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(name: str, command: list[str], env: Mapping[str, str], log_dir: Path) -> Child:
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Child(name, proc, log_path, log)


def _signal_group(child: Child, sig: signal.Signals) -> None:
    try:
        os.killpg(child.proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop(children: Sequence[Child], grace: float = 10.0) -> None:
    """SIGTERM to each child's group, SIGKILL after ``grace``; the group is swept either way."""
    for child in children:
        if child.proc.poll() is None:
            _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop within {grace:.0f} s, killing it")
            _signal_group(child, signal.SIGKILL)
            child.proc.wait()
        _signal_group(child, signal.SIGKILL)
        child.log.close()


def check_alive(children: Sequence[Child]) -> None:
    for child in children:
        code = child.proc.poll()
        if code is not None:
            raise RuntimeError(f"{child.name} exited with code {code}:\n{child.tail()}")
