"""The parts of the platform as separate processes that the chaos run can kill -9 and start again.

Same parts and environment as the end-to-end benchmark (bench/e2e_card.py: ``stack_env``, the
launcher's ``temporal_dev_command`` on free ports, a file-backed dev server), but each part is
started on its own and can be restarted with the same command: the Temporal dev server keeps its
SQLite file, the worker and the portal are stateless, the sandboxes keep their store. Every child
runs in a process group of its own; a kill is by that group's id, never by name.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.client import Client

from bench._common import Child, free_ports, spawn, stop
from bench.stack import stack_env
from portnet.http_keep_alive import SERVER_KEEP_ALIVE_SECONDS

STARTUP_TIMEOUT = 90.0
# The worker is two processes (portnet.launcher.worker_commands): workflow tasks, activities.
PARTS = ("temporal", "sandbox", "worker", "worker-activities", "web")


def reconciliation_env(every: int) -> dict[str, str]:
    """Reconciliation on the run's time scale: a pass every ``every`` seconds; a live attempt whose
    partner's notice or callback never came (a dropped one) is asked about after twice that; a
    partner call left ``processing`` or an attempt past its deadline counts after four times that.
    Production keeps minutes (portnet/settings.py); the run lasts a few of them."""
    return {
        "RECONCILIATION_INTERVAL_SECONDS": str(every),
        "RECONCILIATION_LIVE_AFTER_SECONDS": str(2 * every),
        "RECONCILIATION_STALE_SECONDS": str(4 * every),
        "RECONCILIATION_GRACE_SECONDS": str(4 * every),
    }


@dataclass
class ChaosStack:
    tmp: Path
    env: dict[str, str]
    commands: dict[str, list[str]] = field(default_factory=dict)
    children: dict[str, Child] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    retired: list[Child] = field(default_factory=list)  # killed children, for their logs

    @property
    def base_url(self) -> str:
        return self.env["PUBLIC_BASE_URL"]

    @property
    def sandbox_url(self) -> str:
        return self.env["SANDBOX_BASE_URL"]

    @property
    def temporal_address(self) -> str:
        return self.env["TEMPORAL_ADDRESS"]

    @classmethod
    def prepare(cls, tmp: Path, database_url: str | None, reconcile_every: int = 15) -> ChaosStack:
        temporal_port, ui_port, web_port, smtp_port, sandbox_port, http_port, metrics_port = free_ports(7)
        env = stack_env(tmp, temporal_port, ui_port, web_port, smtp_port, sandbox_port)
        env.update(reconciliation_env(reconcile_every))
        if database_url:
            env["DATABASE_URL"] = database_url
        stack = cls(tmp=tmp, env=env)
        stack.commands = stack._commands(http_port, metrics_port)
        return stack

    def _commands(self, http_port: int, metrics_port: int) -> dict[str, list[str]]:
        from portnet.launcher import find_temporal_binary, temporal_dev_command, worker_commands

        temporal = temporal_dev_command(find_temporal_binary(), self.tmp / "temporal.db")
        temporal[temporal.index("--port") + 1] = self.temporal_address.rsplit(":", 1)[1]
        temporal[temporal.index("--ui-port") + 1] = self.env["TEMPORAL_UI_URL"].rsplit(":", 1)[1]
        temporal += ["--http-port", str(http_port), "--metrics-port", str(metrics_port)]
        python = sys.executable
        web_port = self.base_url.rsplit(":", 1)[1]
        web = [python, "-m", "uvicorn", "web.app:create_app", "--factory", "--host", "127.0.0.1",
               "--port", web_port, "--log-level", "info",
               "--timeout-keep-alive", str(SERVER_KEEP_ALIVE_SECONDS)]  # fmt: skip
        return {
            "temporal": temporal,
            "sandbox": [python, "-m", "sandbox"],
            **worker_commands(python),
            "web": web,
        }

    # --- starting and killing ------------------------------------------------------------------

    def _spawn(self, part: str) -> Child:
        count = self.restarts.get(part, 0)
        name = part if count == 0 else f"{part}-{count}"
        child = spawn(name, self.commands[part], {**os.environ, **self.env}, self.tmp)
        self.children[part] = child
        return child

    async def start_all(self) -> None:
        """In the launcher's order: Temporal, the sandboxes, the worker, the portal; each awaited."""
        for part in PARTS:
            self._spawn(part)
            await self.wait_ready(part)

    def kill(self, part: str) -> None:
        """kill -9 of the part's process group (a crash: no shutdown hook runs)."""
        child = self.children[part]
        try:
            os.killpg(child.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        child.proc.wait()
        child.log.close()
        self.retired.append(child)

    async def restart(self, part: str) -> None:
        self.restarts[part] = self.restarts.get(part, 0) + 1
        self._spawn(part)
        await self.wait_ready(part)

    def dead_parts(self) -> list[str]:
        return [part for part, child in self.children.items() if child.proc.poll() is not None]

    def stop_all(self) -> None:
        """Parts first, then Temporal (the worker shuts down cleanly while the server is still up)."""
        others = [c for p, c in self.children.items() if p != "temporal"]
        stop(others)
        if "temporal" in self.children:
            stop([self.children["temporal"]])

    def logs(self) -> list[Path]:
        return [c.log_path for c in [*self.retired, *self.children.values()]]

    # --- readiness -----------------------------------------------------------------------------

    async def wait_ready(self, part: str) -> None:
        probes: dict[str, Callable[[], Awaitable[bool]]] = {
            "temporal": self._temporal_up,
            "sandbox": lambda: self._http_up(self.sandbox_url, "/sandbox/healthz"),
            "web": lambda: self._http_up(self.base_url, "/healthz"),
            "worker": lambda: self._pollers_up(TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
            "worker-activities": lambda: self._pollers_up(TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
        }
        deadline = time.monotonic() + STARTUP_TIMEOUT
        child = self.children[part]
        while True:
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited with code {child.proc.returncode}:\n{child.tail()}")
            try:
                if await probes[part]():
                    return
            except Exception:  # noqa: BLE001, S110 - not up yet
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{child.name} not ready within {STARTUP_TIMEOUT:.0f} s:\n{child.tail()}")
            await asyncio.sleep(0.3)

    async def connect(self) -> Client:
        from portnet.settings import get_settings
        from portnet.temporal_codec import data_converter

        converter = data_converter(get_settings())
        return await asyncio.wait_for(Client.connect(self.temporal_address, data_converter=converter), 5)

    async def reconcile_now(self) -> None:
        """A reconciliation pass at once (the Web UI's "Trigger" on the schedule), beside any pass
        still running: passes are idempotent, and one begun while partners were at fault may still
        be waiting on them."""
        from temporalio.client import ScheduleOverlapPolicy

        from portnet.schedules import RECONCILIATION_SCHEDULE_ID

        client = await self.connect()
        handle = client.get_schedule_handle(RECONCILIATION_SCHEDULE_ID)
        await asyncio.wait_for(handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL), 10)

    async def _temporal_up(self) -> bool:
        await self.connect()
        return True

    async def _pollers_up(self, kind: TaskQueueType.ValueType) -> bool:
        """A worker polls its task queue once it has connected: the queue shows a poller of its kind
        (workflow tasks for the workflow worker, activity tasks for the activities worker)."""
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

        client = await self.connect()
        request = DescribeTaskQueueRequest(
            namespace=self.env["TEMPORAL_NAMESPACE"],
            task_queue=TaskQueue(name=self.env["TEMPORAL_TASK_QUEUE"]),
            task_queue_type=kind,
        )
        described = await client.workflow_service.describe_task_queue(request)
        # A killed worker's poller is listed for a while: good enough, the new one is on its way.
        return len(described.pollers) > 0

    async def _http_up(self, base: str, path: str) -> bool:
        async with httpx.AsyncClient(base_url=base, timeout=3) as http:
            return (await http.get(path)).status_code == 200
