"""`make bench`: the end-to-end card payment benchmark, then the invoice search benchmark.

Each runs with its defaults (``python -m bench.e2e_card``, ``python -m bench.search``); a failure of
the first does not prevent the second, and the exit code says whether both succeeded. Arguments after
``--e2e`` / ``--search`` go to that benchmark, e.g.

    python -m bench.run_all --e2e --count 100 --search --rows 200000 --backend sqlite
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench import e2e_card, search
from bench._common import say


def split_argv(argv: list[str]) -> dict[str, list[str]]:
    parts: dict[str, list[str]] = {"--e2e": [], "--search": []}
    current: str | None = None
    for arg in argv:
        if arg in parts:
            current = arg
        elif current is None:
            raise SystemExit(f"run_all: put {arg!r} after --e2e or --search")
        else:
            parts[current].append(arg)
    return parts


def main(argv: list[str] | None = None) -> int:
    parts = split_argv(sys.argv[1:] if argv is None else argv)
    benchmarks: list[tuple[str, Callable[[list[str]], dict[str, Any]], list[str]]] = [
        ("e2e_card", e2e_card.main, parts["--e2e"]),
        ("search", search.main, parts["--search"]),
    ]
    failed = []
    for name, run, args in benchmarks:
        say(f"##### bench.{name} {' '.join(args)}")
        t = time.perf_counter()
        try:
            ok = bool(run(args).get("ok"))
        except Exception:
            traceback.print_exc()
            ok = False
        say(f"##### bench.{name}: {'ok' if ok else 'FAILED'} in {time.perf_counter() - t:.0f} s")
        if not ok:
            failed.append(name)
    if failed:
        say(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
