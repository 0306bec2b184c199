"""``python -m sandbox``: the partner sandboxes on ``SANDBOX_BASE_URL``'s host and port (127.0.0.1:8001).

`make run` starts it as a child process of its own; so can anyone who wants the sandboxes without
the portal (a partner's callbacks then wait in the sandbox's store until the portal answers).
"""

from __future__ import annotations

import gc
from urllib.parse import urlsplit

import uvicorn

import sandbox.app  # noqa: F401 - loaded before the freeze below; uvicorn builds the app from it
from portnet.settings import get_settings

# Idle connections kept longer than any client keeps them, as the portal does (its rule and why:
# portnet/http_keep_alive.py; a partner's server owes us nothing of our code, so the value is its own).
KEEP_ALIVE_SECONDS = 65


def main() -> None:
    address = urlsplit(get_settings().sandbox_base_url)
    # What the imports loaded lives as long as the process: out of the cyclic collector's sight, whose
    # full collections otherwise walk it all under load (pauses of up to 290 ms at 64 payers, while a
    # card page or a callback waited). The portal does the same for itself (portnet/heap.py).
    gc.collect()
    gc.freeze()
    uvicorn.run(
        "sandbox.app:create_sandbox_app",
        factory=True,
        host=address.hostname or "127.0.0.1",
        port=address.port or 8001,
        log_level="info",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


if __name__ == "__main__":
    main()
