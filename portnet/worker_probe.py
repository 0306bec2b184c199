"""The worker's readiness, for compose's healthcheck: ``python -m portnet.worker_probe``.

Ready means its pollers are polling the task queue: the Temporal SDK's ``temporal_num_pollers`` on
the worker's own metrics endpoint (WORKER_METRICS_ADDRESS) adds up to more than zero. Exit status 0
when ready, 1 otherwise (with the reason on stderr).
"""

from __future__ import annotations

import sys
import urllib.request

from portnet.settings import get_settings


def pollers(metrics_text: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("temporal_num_pollers"):
            total += float(line.rsplit(" ", 1)[-1])
    return total


def main() -> int:
    address = get_settings().worker_metrics_address.strip()
    if not address:
        print("WORKER_METRICS_ADDRESS is empty: nothing to probe", file=sys.stderr)
        return 1
    host, _, port = address.rpartition(":")
    if host in ("0.0.0.0", "", "::", "[::]"):  # noqa: S104 - a listen address; the probe asks loopback
        host = "127.0.0.1"
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=3) as answer:  # noqa: S310
            text = answer.read().decode()
    except OSError as exc:
        print(f"worker metrics unreachable: {exc}", file=sys.stderr)
        return 1
    if pollers(text) <= 0:
        print("no poller is polling the task queue", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
