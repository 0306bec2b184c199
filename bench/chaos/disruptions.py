"""What goes wrong during a chaos run: crashes of the worker and the Temporal server, partners at
fault, and (only when asked) a restart of PostgreSQL.

Crashes come at random moments (exponential gaps around ``mean_gap`` seconds, from the run's seed):
the part is killed with SIGKILL (no shutdown hook, activities cut mid-flight), stays down a random
moment, then starts again with the same command (the dev server on its own SQLite file, so its
histories survive). Every part the run is about goes down at least once while payments are still
being started, whatever the draws: the first crashes take them in a random order, each early enough
in ``within`` seconds (the paying time) for the others to follow. PostgreSQL is a shared system
service on a development machine: it is restarted only with ``--restart-postgres`` and the command
given, never by default.
"""

from __future__ import annotations

import asyncio
import random
import shlex
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench._common import say
from bench.chaos.stack import ChaosStack


@dataclass
class Disruption:
    at: float  # seconds since the run started
    part: str
    down_seconds: float
    note: str = ""


def fault_settings(rate: float, seed: int | None) -> dict[str, Any]:
    """``rate`` of the partners' API calls fail (40 % server errors, 20 % hangs, 40 % slow answers)
    and ``rate`` of their calls to us go wrong (dropped, duplicated, out of order, a third each)."""
    return {
        "error_rate": round(rate * 0.4, 4),
        "timeout_rate": round(rate * 0.2, 4),
        "slow_rate": round(rate * 0.4, 4),
        "slow_seconds": 2.0,
        "hang_seconds": 30.0,
        "drop_rate": round(rate / 3, 4),
        "duplicate_rate": round(rate / 3, 4),
        "duplicate_delay_seconds": 2.0,
        "reorder_rate": round(rate / 3, 4),
        "reorder_hold_seconds": 3.0,
        "seed": seed,
    }


async def set_partner_faults(partners: httpx.AsyncClient, rate: float, seed: int | None) -> None:
    reply = await partners.put("/sandbox/faults", json=fault_settings(rate, seed))
    reply.raise_for_status()


async def partner_faults_off(partners: httpx.AsyncClient) -> dict[str, dict[str, int]]:
    """Turns every fault off and lets held-back callbacks go; returns what each partner injected."""
    injected = {
        p["partner"]: p["injected"] for p in (await partners.get("/sandbox/faults")).json()["partners"]
    }
    (await partners.delete("/sandbox/faults")).raise_for_status()
    (await partners.post("/sandbox/faults/release-held")).raise_for_status()
    return injected


class Crashes:
    def __init__(
        self,
        stack: ChaosStack,
        rng: random.Random,
        mean_gap: float,
        max_down: float,
        postgres_restart: str | None,
        within: float,
    ) -> None:
        self.stack = stack
        self.rng = rng
        self.mean_gap = mean_gap
        self.max_down = max_down
        self.postgres_restart = postgres_restart
        self.within = within
        self.done: list[Disruption] = []
        self.started = time.monotonic()
        # Each of these goes down once first, in a random order (see the module docstring).
        self.owed = rng.sample(self._parts(), len(self._parts()))
        self.owed_at_first = len(self.owed)

    def _parts(self) -> list[str]:
        # Both worker processes (workflow tasks, activities) and the server.
        parts = ["worker", "worker-activities", "temporal"]
        return [*parts, "postgres"] if self.postgres_restart else parts

    def _targets(self) -> list[str]:
        # The worker crashes more often than the server: its workflow process or its activities one.
        targets = ["worker", "worker-activities", "temporal"]
        if self.postgres_restart:
            targets.append("postgres")
        return targets

    def next_crash(self, elapsed: float) -> tuple[float, str]:
        """The wait before the next crash, ``elapsed`` seconds into the run, and the part it takes.

        A part still owed its crash goes down by its share of ``within`` (the k-th of n by
        k / (n + 1) of it), however long the exponential draw."""
        gap = min(self.rng.expovariate(1 / self.mean_gap), self.mean_gap * 3)
        if not self.owed:
            return gap, self.rng.choice(self._targets())
        rank = self.owed_at_first - len(self.owed) + 1
        latest = self.within * rank / (self.owed_at_first + 1)
        return max(min(gap, latest - elapsed), 0.0), self.owed.pop(0)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: wait, crash one part, bring it back; a part that died alone comes back too."""
        while not stop.is_set():
            gap, part = self.next_crash(time.monotonic() - self.started)
            try:
                await asyncio.wait_for(stop.wait(), timeout=gap)
                return
            except TimeoutError:
                pass
            await self.crash(part)
            await self.revive_dead()

    async def crash(self, part: str) -> None:
        down = round(self.rng.uniform(0.5, self.max_down), 1)
        at = round(time.monotonic() - self.started, 1)
        if part == "postgres":
            assert self.postgres_restart is not None
            say(f"chaos: restarting PostgreSQL ({self.postgres_restart})")
            done = await asyncio.to_thread(
                subprocess.run,
                shlex.split(self.postgres_restart),
                capture_output=True,
                text=True,
                check=False,
            )
            self.done.append(Disruption(at, part, 0.0, f"exit {done.returncode}"))
            return
        say(f"chaos: kill -9 {part} at {at} s, down {down} s")
        self.stack.kill(part)
        await asyncio.sleep(down)
        await self.stack.restart(part)
        self.done.append(Disruption(at, part, down))

    async def revive_dead(self) -> None:
        for part in self.stack.dead_parts():
            say(f"chaos: {part} died on its own, restarting it")
            self.stack.kill(part)
            await self.stack.restart(part)
            self.done.append(
                Disruption(round(time.monotonic() - self.started, 1), part, 0.0, "died on its own")
            )
