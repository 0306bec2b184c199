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

Bounded: ``EXAMPLES`` requests per operation and mode (deterministic, ``derandomize``; set
``PORTNET_FUZZ_EXAMPLES`` for a deeper run: 60 on SQLite and 40 on PostgreSQL found no 5xx),
generated once and sent as each caller the mode applies to: a few thousand requests in all, well
under a minute per database.
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


def fuzz(schema: schemathesis.BaseSchema, base_url: str, callers: list[Caller]) -> list[str]:
    """Runs every operation as every caller; returns the 5xx answers seen (at most 3 per operation,
    mode and caller).

    Each operation's requests are generated once per mode and sent as each caller that mode applies
    to: generation is derandomized, so every caller got the same requests anyway, and generating
    them (hypothesis, jsonschema) is most of the test's work."""
    failures: list[str] = []
    sessions = {caller.name: requests.Session() for caller in callers}
    try:
        for caller in callers:
            sessions[caller.name].cookies.update(caller.cookies)
        for result in schema.get_all_operations():
            # An operation the schema describes wrongly is a failure too, not something to skip.
            assert isinstance(result, Ok), result.err()
            operation = result.ok()
            method = operation.method.upper()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                senders = [caller for caller in callers if mode in modes_for(caller, method, operation.path)]
                if not senders:
                    continue
                cases = generated_cases(operation, mode)
                for caller in senders:
                    label = f"{caller.name} / {mode.value}"
                    failures += send_cases(operation, cases, sessions[caller.name], base_url, label)
    finally:
        for http in sessions.values():
            http.close()
    return failures


READINESS = "/readyz"


def readiness_says_not_ready(status: int, body: str) -> bool:
    """``/readyz`` takes no input: its 503 "degraded" is its contract (a dependency did not answer
    in time, e.g. Temporal on a loaded machine), not an input the portal failed to handle."""
    return status == 503 and '"degraded"' in body


def generated_cases(operation: schemathesis.APIOperation, mode: GenerationMode) -> list[schemathesis.Case]:
    """``EXAMPLES`` requests for one operation in one mode; none in negative mode for an operation
    that takes no input (nothing to break)."""
    cases: list[schemathesis.Case] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def collect(case: schemathesis.Case) -> None:
        cases.append(case)

    try:
        collect()
    except Unsatisfiable:
        pass
    return cases


def send_cases(
    operation: schemathesis.APIOperation,
    cases: list[schemathesis.Case],
    http: requests.Session,
    base_url: str,
    label: str,
) -> list[str]:
    seen: list[str] = []
    for case in cases:
        response = case.call(base_url=base_url, session=http, timeout=30)
        if operation.path == READINESS and readiness_says_not_ready(response.status_code, response.text):
            continue
        if response.status_code >= 500 and len(seen) < 3:
            seen.append(
                f"{label}: {operation.label} -> {response.status_code} {response.text[:200]!r}\n"
                f"    {case.as_curl_command()}"
            )
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
        # In a thread: the server under test runs on this event loop.
        failures = await asyncio.to_thread(fuzz, schema, stack.base_url, callers)
    assert not failures, "5xx answers:\n" + "\n".join(failures)
