"""Password hashing in the test process: argon2id at its smallest cost.

The suite logs in a few hundred times; at the portal's cost (64 MiB, 3 passes, 4 lanes: about 0.2 s
of CPU a check) the checks would be most of some tests' time. Everything else about the hashes is the
portal's own (portnet/security.py): argon2id, salted, rehashed at login when the parameters differ.
``PORTAL`` keeps the portal's hasher for tests/test_security.py. Subprocesses a test starts (the CLI,
uvicorn, the chaos run) import portnet.security afresh and hash at the portal's cost.
"""

from __future__ import annotations

import sys

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from portnet import security

PORTAL = security._password_hash
SUITE = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))


def hash_at_the_suites_cost() -> None:
    """Before web.login makes its dummy hash: an unknown user must still cost what a known one does."""
    assert "web.login" not in sys.modules, "web.login made its dummy hash at the portal's cost"
    security._password_hash = SUITE
