"""The worker stops cleanly on SIGTERM (a redeploy): it stops polling, lets running activities finish
within its grace period, and exits 0 instead of dying mid-activity."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parents[2]


async def test_sigterm_stops_the_worker_gracefully(dev_env: WorkflowEnvironment, database_url: str) -> None:
    env = {
        **os.environ,
        "PORTNET_ENV": "development",
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": "shutdown-test",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "3",
        "PYTHONUNBUFFERED": "1",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "worker.py",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(60):  # the worker starts and polls
            while b"polling task queue shutdown-test" not in await proc.stdout.readline():
                pass
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            output = (await proc.stdout.read()).decode()
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "SIGTERM: stopping" in output
    assert "Traceback" not in output
