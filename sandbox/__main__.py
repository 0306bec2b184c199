"""``python -m sandbox``: the partner sandboxes on ``SANDBOX_BASE_URL``'s host and port (127.0.0.1:8001).

`make run` starts it as a child process of its own; so can anyone who wants the sandboxes without
the portal (a partner's callbacks then wait in the sandbox's store until the portal answers).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import uvicorn

from portnet.http_keep_alive import SERVER_KEEP_ALIVE_SECONDS
from portnet.settings import get_settings


def main() -> None:
    address = urlsplit(get_settings().sandbox_base_url)
    uvicorn.run(
        "sandbox.app:create_sandbox_app",
        factory=True,
        host=address.hostname or "127.0.0.1",
        port=address.port or 8001,
        log_level="info",
        timeout_keep_alive=SERVER_KEEP_ALIVE_SECONDS,
    )


if __name__ == "__main__":
    main()
