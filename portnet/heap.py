"""The collector and what a process loads at start: out of its sight once the process is ready.

Every long-running process here (the portal, the workers; the sandboxes, which import nothing of
ours, do the same in sandbox/__main__.py) loads at start what it keeps until it stops: modules,
settings, Jinja templates, ORM mappers, the catalogs, the Temporal SDK. The cyclic collector's full
collections walk every tracked object each time, and under load they come every few seconds: at 64
concurrent payers the portal held 220,000 objects and paused up to 440 ms in a full collection, with
the GIL held, while CMI waited for its callback's answer; the worker's 160,000 objects of imports
cost about 0.1 s of CPU per full collection. After ``gc.freeze()`` those walks see only what the
requests and payments in flight hold.
"""

from __future__ import annotations

import gc

_settled = False


def settle_heap() -> None:
    """Collects what start-up left behind, then freezes the rest: what lives as long as the process
    is never garbage, and is not walked again. Called once the process is ready to serve.

    Once per process: a process that serves several apps in turn (a test session) would otherwise
    freeze each one's leftovers, and frozen objects are never collected."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect()
    gc.freeze()
