"""What clients waiting on live payments' statuses cost: polling, against the long-poll.

On the embedded stack of bench.e2e_card (bench/stack.py: Temporal dev server, worker, portal,
sandboxes, a fresh SQLite ledger), ``--payments`` card payments are started and left awaiting the
payer (their CMI page is never paid). ``--watchers`` logged-in users then each watch every one of
them, for ``--seconds`` per mode, one mode after the other on the same payments:

- ``idle``: nobody watches (the stack's own CPU meanwhile);
- ``poll``: ``GET /api/v1/payments/{id}`` every ``--poll-interval`` (3 s: the status page as it
  reloaded itself; API clients poll faster);
- ``longpoll``: ``GET /api/v1/payments/{id}?wait=25&since=<status>`` again as each answer comes.

Reported per mode: requests answered, and the CPU seconds of the portal, the worker and Temporal
(``/proc``, children excluded) over the mode's time, less nothing: compare with ``idle``.

    python -m bench.status_wait [--payments 4] [--watchers 16] [--seconds 20] [--poll-interval 3]

Writes bench/results/status_wait-*.json. Everything it starts is stopped, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import free_ports, markdown_table, say, stop, write_results
from bench.load import PAYER, cpu_snapshot
from bench.stack import Stack, keep_logs, prepare_ledger, stack_env, start_stack, use_environment

PASSWORD = "Bench-Watch-2026!"  # noqa: S105 - accounts of this run's throwaway ledger
MEASURED = ("web", "worker", "temporal")
WAIT_SECONDS = 25


def add_watchers(count: int) -> list[str]:
    """``count`` client users of SATAA (the company that owns the payments); their names."""
    from sqlmodel import Session, select

    from portnet import db as portnet_db
    from portnet.models import Company, User
    from portnet.security import hash_password

    names = [f"bench-watcher-{n:03d}" for n in range(count)]
    password_hash = hash_password(PASSWORD)
    with Session(portnet_db.get_engine()) as session:
        company = session.exec(select(Company).where(Company.customs_code == "290240")).one()
        for name in names:
            session.add(User(username=name, password_hash=password_hash, company_id=company.id))
        session.commit()
    return names


async def watch(
    http: httpx.AsyncClient, payment_id: str, mode: str, until: float, interval: float, answered: list[int]
) -> None:
    status = "awaiting_payer"
    while time.monotonic() < until:
        if mode == "poll":
            response = await http.get(f"/api/v1/payments/{payment_id}")
            answered[0] += 1
            await asyncio.sleep(min(interval, max(0.0, until - time.monotonic())))
        else:
            params: dict[str, str | int] = {"wait": WAIT_SECONDS, "since": status}
            response = await http.get(f"/api/v1/payments/{payment_id}", params=params)
            answered[0] += 1
        if response.status_code != 200:
            raise RuntimeError(f"{mode} {payment_id}: {response.status_code} {response.text[:200]}")
        status = response.json()["status"]


async def measure(
    stack: Stack,
    sessions: list[httpx.AsyncClient],
    payment_ids: list[str],
    mode: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    answered = [0]
    before = cpu_snapshot(stack.children)
    started = time.monotonic()
    until = started + args.seconds
    if mode == "idle":
        await asyncio.sleep(args.seconds)
    else:
        tasks = [
            asyncio.ensure_future(watch(http, pid, mode, until, args.poll_interval, answered))
            for http in sessions
            for pid in payment_ids
        ]
        # A long-poll ends with its answer (at most WAIT_SECONDS later): it is cut at the mode's end.
        done, pending = await asyncio.wait(tasks, timeout=args.seconds + 1)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()
    elapsed = time.monotonic() - started
    after = cpu_snapshot(stack.children)
    cpu = {name: round(after[name] - before[name], 3) for name in MEASURED}
    return {"mode": mode, "seconds": round(elapsed, 2), "answered": answered[0], "cpu_seconds": cpu}


async def benchmark(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    temporal_port, ui_port, web_port, smtp_port, sandbox_port = free_ports(5)
    env = stack_env(tmp, temporal_port, ui_port, web_port, smtp_port, sandbox_port)
    saved_env = use_environment(dict(env))
    stack = Stack(tmp, env, env["TEMPORAL_ADDRESS"], env["PUBLIC_BASE_URL"], env["SANDBOX_BASE_URL"], "", [])
    failed = True
    sessions: list[httpx.AsyncClient] = []
    try:
        invoice_ids = prepare_ledger(args.payments)
        names = add_watchers(args.watchers)
        await start_stack(stack)
        say(f"stack up: {' '.join(c.name for c in stack.children)}")
        for name in names:
            # Idle connections dropped before the portal's keep-alive ends them: never a request
            # sent on a connection the server is closing.
            limits = httpx.Limits(keepalive_expiry=4.0)
            http = httpx.AsyncClient(base_url=stack.base_url, timeout=WAIT_SECONDS + 10, limits=limits)
            sessions.append(http)
            (
                await http.post("/api/v1/session", json={"username": name, "password": PASSWORD})
            ).raise_for_status()
        payment_ids = []
        for invoice_id in invoice_ids:
            body = {"invoice_ids": [invoice_id], "channel": "cmi_card", "payer": PAYER}
            created = await sessions[0].post("/api/v1/payments", json=body)
            created.raise_for_status()
            payment_ids.append(created.json()["id"])
        say(f"{len(payment_ids)} payments awaiting their payer, {len(sessions)} watchers each")
        results = []
        for mode in ("idle", "poll", "longpoll"):
            results.append(await measure(stack, sessions, payment_ids, mode, args))
            say(f"{mode}: {results[-1]}")
        clients = len(sessions) * len(payment_ids)
        rows = [
            [
                r["mode"],
                r["answered"],
                *(f"{r['cpu_seconds'][name]:.2f}" for name in MEASURED),
                f"{sum(r['cpu_seconds'].values()) / r['seconds'] * 1000:.0f}",
            ]
            for r in results
        ]
        headers = ["mode", "answers", *(f"{n} CPU s" for n in MEASURED), "CPU ms per s"]
        text = markdown_table(headers, rows)
        say(
            f"{clients} clients ({len(payment_ids)} payments x {len(sessions)} watchers), "
            f"{args.seconds:.0f} s each:\n{text}"
        )
        failed = False
        return {
            "ok": True,
            "clients": clients,
            "poll_interval_s": args.poll_interval,
            "modes": results,
            "markdown": text,
        }
    finally:
        for http in sessions:
            await http.aclose()
        stop([c for c in stack.children if c.name != "temporal"])
        stop([c for c in stack.children if c.name == "temporal"])
        if failed:
            say(f"child logs kept in {keep_logs(stack.children)}")
        from portnet import db as portnet_db

        portnet_db.get_engine().dispose()
        use_environment(saved_env)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=4, help="live payments watched (at most 8)")
    parser.add_argument("--watchers", type=int, default=16, help="users watching every payment")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each mode")
    parser.add_argument("--poll-interval", type=float, default=3.0, help="seconds between plain polls")
    args = parser.parse_args(argv)
    if not 1 <= args.payments <= 8 or args.watchers < 1 or args.seconds <= 0 or args.poll_interval <= 0:
        parser.error("1 <= --payments <= 8 (a user's waits are capped), --watchers >= 1, --seconds > 0")
    tmp = Path(tempfile.mkdtemp(prefix=f"pn-bench-wait-{secrets.token_hex(2)}-"))
    try:
        result = asyncio.run(benchmark(args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"results written to {write_results('status_wait', result, argv)}")
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
