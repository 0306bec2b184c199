"""``python -m bench.chaos`` (``make chaos``, ``make chaos-short``): payments under crashes and faults.

Starts the parts separately, on free ports and a fresh ledger (bench/chaos/stack.py): the Temporal
dev server, the partner sandboxes, the worker, the portal. Sets every partner to ``--fault-rate``
faults (bench/chaos/disruptions.py), then pays card, Fatourati and Amanpay invoices at
``--concurrency`` for ``--duration`` seconds (bench/chaos/payers.py) while the worker and the
Temporal server are killed -9 at random moments and restarted (and PostgreSQL, with
``--restart-postgres``, when the ledger is on it). Then: crashes stop, faults go off, held-back
callbacks go out, reconciliation passes are triggered (the schedule runs every ``--reconcile-every``
seconds on this run's time scale, so that an outcome whose callback a partner dropped is found by
asking the partner), and the run waits up to ``--settle`` seconds for every payment to end before it
compares the bank's view, the API's and the ledger's (bench/chaos/tally.py). It prints

    payments, captured, succeeded, lost, uncaptured_settled, double, stuck

and exits 1 unless lost, uncaptured_settled, double and stuck are 0 and every invoice got its
attempt. Results go to bench/results/chaos-*.json; the children's logs are kept on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from bench._common import RESULTS, say, write_results
from bench.chaos.disruptions import Crashes, fault_settings, partner_faults_off, set_partner_faults
from bench.chaos.payers import Payer, pay_all
from bench.chaos.stack import ChaosStack
from bench.chaos.tally import api_statuses, bank_views, judge, ledger_views
from bench.e2e_card import DEMO_PASSWORD
from bench.stack import prepare_ledger, use_environment

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# Longer than a partner's hang (30 s) plus the portal's own wait: a timeout here is the portal's.
API_TIMEOUT = 90.0
RESTART_POSTGRES = "sudo -n systemctl restart postgresql"


@contextmanager
def ledger_database(postgres: str | None) -> Iterator[str | None]:
    """None: the stack's SQLite file; else a new database on that PostgreSQL server, dropped after."""
    if postgres is None:
        yield None
        return
    import sqlalchemy as sa

    name = f"pn_chaos_{secrets.token_hex(5)}"
    admin = sa.create_engine(postgres, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield sa.engine.make_url(postgres).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


async def reconcile_while_settling(stack: ChaosStack, every: int) -> None:
    """While the run waits for every payment to end: a reconciliation pass now that partners answer
    again, and one every ``every`` seconds (the schedule's own passes go on too); cancelled at the end."""
    while True:
        try:
            await stack.reconcile_now()
        except Exception as err:  # noqa: BLE001 - Temporal coming back: the next round tries again
            say(f"reconciliation not triggered: {type(err).__name__}: {err}")
        await asyncio.sleep(every)


async def chaos(args: argparse.Namespace, tmp: Path, database_url: str | None) -> dict[str, Any]:
    stack = ChaosStack.prepare(tmp, database_url, args.reconcile_every)
    saved_env = use_environment(dict(stack.env))
    rng = random.Random(args.seed)  # noqa: S311 - chaos schedule, not a secret
    failed = True
    try:
        invoices = prepare_ledger(args.max_payments)
        await stack.start_all()
        say(f"stack up: {', '.join(stack.children)}; ledger {'PostgreSQL' if database_url else 'SQLite'}")
        limits = httpx.Limits(max_connections=args.concurrency * 4, keepalive_expiry=2.0)
        async with (
            httpx.AsyncClient(base_url=stack.base_url, timeout=API_TIMEOUT, limits=limits) as api,
            httpx.AsyncClient(base_url=stack.sandbox_url, timeout=60, limits=limits) as partners,
        ):
            (
                await api.post("/api/v1/session", json={"username": "sataa", "password": DEMO_PASSWORD})
            ).raise_for_status()
            await set_partner_faults(partners, args.fault_rate, args.seed)
            postgres_restart = (
                args.postgres_restart_command if args.restart_postgres and database_url else None
            )
            crashes = Crashes(
                stack, rng, args.crash_every, args.max_down, postgres_restart, within=args.duration
            )
            stop = asyncio.Event()
            crashing = asyncio.create_task(crashes.run(stop))
            t0 = time.monotonic()
            runs = await pay_all(Payer(api, partners), invoices, args.concurrency, args.duration)
            paying_seconds = time.monotonic() - t0
            stop.set()
            await crashing
            await crashes.revive_dead()
            say(f"{len(runs)} payments made in {paying_seconds:.0f} s, {len(crashes.done)} crashes; settling")
            injected = await partner_faults_off(partners)
            reconciling = asyncio.create_task(reconcile_while_settling(stack, args.reconcile_every))
            try:
                statuses = await api_statuses(api, runs, args.settle)
            finally:
                reconciling.cancel()
        bank = await asyncio.to_thread(bank_views, stack.env["SANDBOX_DATABASE_URL"], runs)
        ledger = await asyncio.to_thread(ledger_views, runs)
        verdict = judge(runs, bank, statuses, ledger)
        failed = not verdict.ok
        print(verdict.line(), flush=True)
        print(f"unstarted {verdict.unstarted}, unapplied {verdict.unapplied}", flush=True)
        kills = ", ".join(f"{c.part} at {c.at:.0f} s" for c in crashes.done) or "none"
        print(f"crashes: {kills}", flush=True)
        faults = "; ".join(f"{p} {n}" for p, n in injected.items() if n)
        print(f"partner faults injected: {faults or 'none'}", flush=True)
        for problem in verdict.problems[:40]:
            print(f"  {problem}", flush=True)
        return {
            "ok": verdict.ok,
            "figures": verdict.figures,
            "unstarted": verdict.unstarted,
            "unapplied": verdict.unapplied,
            "problems": verdict.problems,
            "config": {**vars(args), "ledger": "postgresql" if database_url else "sqlite"},
            "faults": fault_settings(args.fault_rate, args.seed),
            "faults_injected": injected,
            "crashes": [asdict(c) for c in crashes.done],
            "paying_seconds": round(paying_seconds, 1),
            "by_channel": {
                ch: sum(1 for r in runs if r.channel == ch) for ch in ("card", "fatourati", "amanpay")
            },
        }
    except BaseException:
        for child in stack.children.values():
            say(f"--- last lines of {child.name} ---\n{child.tail(15)}")
        raise
    finally:
        stack.stop_all()
        if failed:
            kept = RESULTS / f"chaos-logs-{time.strftime('%Y%m%dT%H%M%S')}"
            kept.mkdir(parents=True, exist_ok=True)
            for log in stack.logs():
                if log.exists():
                    shutil.copy(log, kept / log.name)
            say(f"child logs kept in {kept}")
        from portnet import db as portnet_db

        portnet_db.get_engine().dispose()
        use_environment(saved_env)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=600, help="seconds of paying under chaos")
    parser.add_argument("--concurrency", type=int, default=16, help="payers at once")
    parser.add_argument("--max-payments", type=int, default=3000, help="invoices prepared (an upper bound)")
    parser.add_argument("--fault-rate", type=float, default=0.3, help="share of partner calls that go wrong")
    parser.add_argument("--crash-every", type=float, default=30, help="mean seconds between two crashes")
    parser.add_argument(
        "--max-down", type=float, default=5, help="longest time a crashed part stays down (s)"
    )
    parser.add_argument("--settle", type=float, default=180, help="seconds allowed for payments to end after")
    reconcile_help = (
        "seconds between reconciliation passes (the live attempts whose partner never called back are "
        "asked about after twice that); production runs every 300 s"
    )
    parser.add_argument("--reconcile-every", type=int, default=15, help=reconcile_help)
    parser.add_argument(
        "--seed", type=int, default=None, help="crash schedule and fault draws (default: random)"
    )
    pg_help = f"ledger on a new database of this PostgreSQL server (default {POSTGRES_ADMIN})"
    parser.add_argument(
        "--postgres", nargs="?", const=POSTGRES_ADMIN, default=None, metavar="URL", help=pg_help
    )
    restart_help = "also restart PostgreSQL at random moments (a shared service: off by default)"
    parser.add_argument("--restart-postgres", action="store_true", help=restart_help)
    command_help = "how to restart it, with --restart-postgres"
    parser.add_argument("--postgres-restart-command", default=RESTART_POSTGRES, help=command_help)
    args = parser.parse_args(argv)
    counts = (args.concurrency, args.reconcile_every)
    if not 0 <= args.fault_rate <= 1 or min(counts) < 1 or args.duration <= 0:
        parser.error("--fault-rate in [0, 1], --concurrency >= 1, --duration > 0, --reconcile-every >= 1")
    if args.restart_postgres and not args.postgres:
        parser.error("--restart-postgres needs the ledger on PostgreSQL (--postgres)")
    if args.seed is None:
        args.seed = secrets.randbelow(10**6)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = f"{args.duration:.0f} s at concurrency {args.concurrency}, faults {args.fault_rate:.0%}"
    say(f"chaos: {plan}, seed {args.seed}")
    tmp = Path(tempfile.mkdtemp(prefix="pn-chaos-"))
    try:
        with ledger_database(args.postgres) as database_url:
            result = asyncio.run(chaos(args, tmp, database_url))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"results written to {write_results('chaos', result, argv)}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
