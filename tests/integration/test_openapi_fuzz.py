"""schemathesis over the whole OpenAPI document, against the running stack: no answer is a 5xx.

Every operation gets valid requests (schemathesis' positive mode) and requests that break the
schema on purpose (negative mode: wrong types, numbers out of range, missing fields...), as three
callers: nobody logged in, a client, and finance. A 5xx is a bug whatever the input, so the test
collects every one it sees and fails listing them with a curl command to reproduce.

What keeps the run safe for the rest of the suite, which shares the database and the servers:
- the client belongs to a company of its own with no invoice, so no invoice of another test is held
  by a fuzzed payment;
- finance sends only schema-breaking state-changing requests (refused before any handler runs): valid
  ones would block or cancel seeded invoices by id;
- the login operation gets only schema-breaking bodies: valid ones with random credentials are
  failed logins, which count against the login throttle of 127.0.0.1;
- the client's session is never closed by a fuzzed logout (``DELETE /api/v1/session``, fuzzed
  without a session).

Bounded: ``EXAMPLES`` per operation, mode and caller (deterministic, ``derandomize``; set
``PORTNET_FUZZ_EXAMPLES`` for a deeper run: 60 on SQLite and 40 on PostgreSQL found no 5xx), a few
thousand requests in all, well under a minute per database.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from sqlmodel import Session

from portnet.models import Company, User
from portnet.security import hash_password
from tests.support.api import Stack

EXAMPLES = int(os.environ.get("PORTNET_FUZZ_EXAMPLES", "10"))
PASSWORD = "Portnet2026!"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
LOGIN = ("POST", "/api/v1/session")
LOGOUT = ("DELETE", "/api/v1/session")


@dataclass
class Caller:
    name: str
    cookies: dict[str, str]
    # Whether valid state-changing requests may be sent (see the module docstring).
    valid_unsafe: bool


def modes_for(caller: Caller, method: str, path: str) -> list[GenerationMode]:
    if (method, path) == LOGIN:
        return [GenerationMode.NEGATIVE]
    if (method, path) == LOGOUT and caller.cookies:
        return []
    if method in UNSAFE and not caller.valid_unsafe:
        return [GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def fuzz(schema: schemathesis.BaseSchema, base_url: str, caller: Caller) -> list[str]:
    """Runs every operation for one caller; returns the 5xx answers seen (at most 3 per operation)."""
    failures: list[str] = []
    with requests.Session() as http:
        http.cookies.update(caller.cookies)
        for result in schema.get_all_operations():
            # An operation the schema describes wrongly is a failure too, not something to skip.
            assert isinstance(result, Ok), result.err()
            operation = result.ok()
            for mode in modes_for(caller, operation.method.upper(), operation.path):
                failures += fuzz_operation(operation, mode, http, base_url, f"{caller.name} / {mode.value}")
    return failures


READINESS = "/readyz"


def readiness_says_not_ready(status: int, body: str) -> bool:
    """``/readyz`` takes no input: its 503 "degraded" is its contract (a dependency did not answer
    in time, e.g. Temporal on a loaded machine), not an input the portal failed to handle."""
    return status == 503 and '"degraded"' in body


def fuzz_operation(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    http: requests.Session,
    base_url: str,
    label: str,
) -> list[str]:
    seen: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, session=http, timeout=30)
        if operation.path == READINESS and readiness_says_not_ready(response.status_code, response.text):
            return
        if response.status_code >= 500 and len(seen) < 3:
            seen.append(
                f"{label}: {operation.label} -> {response.status_code} {response.text[:200]!r}\n"
                f"    {case.as_curl_command()}"
            )

    try:
        call()
    except Unsatisfiable:
        pass  # negative mode, nothing to break: the operation takes no input
    return seen


def api_login(base_url: str, username: str) -> dict[str, str]:
    response = requests.post(
        f"{base_url}/api/v1/session", json={"username": username, "password": PASSWORD}, timeout=30
    )
    assert response.status_code == 200, response.text
    return {name: value or "" for name, value in response.cookies.items()}


@contextmanager
def client_without_invoices(db: Session) -> Iterator[str]:
    """A client of a company of its own: every invoice id the fuzzer tries is someone else's."""
    tag = uuid.uuid4().hex[:8]
    company = Company(name=f"FUZZ {tag}", customs_code=f"FZ{tag}", email=f"fuzz-{tag}@demo.portnet.ma")
    db.add(company)
    db.commit()
    user = User(
        username=f"fuzz{tag}",
        password_hash=hash_password(PASSWORD),
        role="client",
        company_id=company.id,
        full_name="Client de test (fuzz)",
        email=f"fuzz-{tag}@demo.portnet.ma",
    )
    db.add(user)
    db.commit()
    yield user.username


@pytest.mark.integration
async def test_no_operation_answers_a_server_error(stack: Stack, db: Session) -> None:
    schema = schemathesis.openapi.from_dict(stack.app.openapi())
    with client_without_invoices(db) as username:
        client_cookies = await asyncio.to_thread(api_login, stack.base_url, username)
        finance_cookies = await asyncio.to_thread(api_login, stack.base_url, "finance")
        callers = [
            Caller("sans session", {}, valid_unsafe=True),
            Caller("client", client_cookies, valid_unsafe=True),
            Caller("finance", finance_cookies, valid_unsafe=False),
        ]
        failures: list[str] = []
        for caller in callers:
            # In a thread: the server under test runs on this event loop.
            failures += await asyncio.to_thread(fuzz, schema, stack.base_url, caller)
    assert not failures, "5xx answers:\n" + "\n".join(failures)
