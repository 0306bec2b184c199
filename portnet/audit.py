"""Security events (logins, locks, password changes) on one dedicated logger, ``portnet.audit``.

One line per event, ``event key=value ...``, so operators can route that logger alone to their
audit store. No password, hash or session token is ever passed here: only names, addresses, counts
and instants.
"""

from __future__ import annotations

import logging

log = logging.getLogger("portnet.audit")


def audit(event: str, *, level: int = logging.INFO, **fields: object) -> None:
    details = " ".join(f"{name}={value!r}" for name, value in fields.items())
    log.log(level, "%s %s", event, details, extra={"audit_event": event, "audit_fields": fields})
