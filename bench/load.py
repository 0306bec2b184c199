"""The load of bench.e2e_card: one card payment as a client and its bank drive it, one bare workflow,
``count`` of them at a bounded concurrency, and what each run measured (latencies, phases, CPU).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

from bench._common import (
    Child,
    machine_cpu_seconds,
    percentile,
)
from bench.bare import BareWorkflow

VISA = {"pan": "4000000000000010", "expiry": "12/30", "cvv": "000"}
PAYER = {"name": "Yassine Alaoui", "email": "tresorerie@sataa.ma"}
PAYMENT_TIMEOUT = 60.0
MACHINE = "whole machine"  # every process, ours and others': what is left is someone else's load
SANDBOX = "sandbox"  # the partners' process (the bank): measured, but not ours


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
            "p50_ms": json_number(self.latency_ms(50)),
            "p95_ms": json_number(self.latency_ms(95)),
            "p99_ms": json_number(self.latency_ms(99)),
            "phases_p50_ms": {name: json_number(self.phase_ms(name, 50)) for name in phases},
            "phases_p95_ms": {name: json_number(self.phase_ms(name, 95)) for name in phases},
            # The card + callback phase's p99 is what CMI sees of our callback answers.
            "phases_p99_ms": {name: json_number(self.phase_ms(name, 99)) for name in phases},
            "closed_seconds": None if self.closed_seconds is None else round(self.closed_seconds, 3),
            "closed_per_second": None
            if not self.closed_seconds
            else round(len(self.samples) / self.closed_seconds, 2),
            "cpu_seconds": {k: round(v, 2) for k, v in self.cpu_seconds.items()},
            "cpu_ms_per_item": json_number(cpu_per_item(self) * 1000),
            "round_seconds": self.rounds,
        }


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


def cpu_per_item(outcome: Outcome) -> float:
    """CPU seconds of all our processes per completed item (the sandboxes are the partners', not ours)."""
    ours = [
        v for name, v in outcome.cpu_seconds.items() if name not in (MACHINE, SANDBOX) and not math.isnan(v)
    ]
    return sum(ours) / len(outcome.samples) if outcome.samples else float("nan")


def json_number(value: float, digits: int = 1) -> float | None:
    """JSON has no NaN."""
    return None if math.isnan(value) else round(value, digits)
