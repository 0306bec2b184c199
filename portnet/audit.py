"""Security events (logins, locks, password changes) on one dedicated logger, ``portnet.audit``.

One line per event, ``event key=value ...``, so operators can route that logger alone to their
audit store. No password, hash or session token is ever passed here: only names, addresses, counts
and instants.

The logger is at INFO whatever the root level. A process that configured no logging at all (the
portal under plain uvicorn configures only uvicorn's loggers; the CLI none) still writes the lines,
to stderr, through a handler added at the first event; where logging is configured (the worker, an
operator's config, pytest), the lines go where everything else goes.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("portnet.audit")
log.setLevel(logging.INFO)


def _ensure_output() -> None:
    if log.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s audit %(levelname)s %(message)s"))
    log.addHandler(handler)


def audit(event: str, *, level: int = logging.INFO, **fields: object) -> None:
    _ensure_output()
    details = " ".join(f"{name}={value!r}" for name, value in fields.items())
    log.log(level, "%s %s", event, details, extra={"audit_event": event, "audit_fields": fields})
