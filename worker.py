"""The Temporal worker: every workflow and every activity, on one task queue.

By default (``--role all``) one process serves both. ``--role workflows`` (or WORKER_ROLE) serves
only the workflow tasks, with the local activity they run in place (the card form), and ``--role
activities`` only the activities: one process of each keeps workflow activations, which answer the
portal's Updates (a CMI callback's ``cmi_result``), from waiting for the GIL behind receipts, QR
codes and e-mails. Both roles poll the same task queue; run at least one of each.

Ledger activities are synchronous (SQLAlchemy), so they run on a thread pool; partner and mail
activities are async and run on the event loop. Every payload the worker reads or writes goes through
the client's data converter, which encrypts it (portnet/temporal_codec.py). Its metrics (Temporal SDK's
and ours) are served in Prometheus format on WORKER_METRICS_ADDRESS; traces and JSON logs as the
portal's (portnet/telemetry.py, portnet/logs.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError
from temporalio.worker import PollerBehaviorAutoscaling, Worker, WorkerDeploymentConfig

from activities import ACTIVITIES
from activities.cmi_card import build_card_form
from activities.http import close_partner_clients
from portnet import attempt_counts, telemetry
from portnet.heap import settle_heap
from portnet.logs import configure_logging
from portnet.metrics import PARTNER_CALLS
from portnet.production import refuse_unsafe_production
from portnet.schedules import ensure_schedules
from portnet.settings import Settings, get_settings
from portnet.temporal_codec import data_converter
from workflows import WORKFLOWS

__all__ = [
    "ACTIVITIES",
    "LOCAL_ACTIVITIES",
    "ROLES",
    "WORKFLOWS",
    "build_worker",
    "deployment_config",
    "role_options",
]

ROLES = ("all", "workflows", "activities")
# Run by the workflow's own worker (workflow.execute_local_activity), never polled from the queue.
LOCAL_ACTIVITIES: list[Callable[..., Any]] = [build_card_form]


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """The worker's deployment version when the operator gave one, attempts pinned to it.

    Pinned: an attempt (up to 30 days for a cheque) runs to its end on the code that started it;
    only new attempts go to a version once it is made current (``temporal worker deployment
    set-current-version``). Without a version, every worker runs every attempt and compatibility
    rests on ``workflow.patched`` and the replay test.
    """
    if not settings.temporal_deployment_name:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(
            deployment_name=settings.temporal_deployment_name, build_id=settings.temporal_build_id
        ),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )


def role_options(role: str, activities: Sequence[Callable[..., Any]] = ACTIVITIES) -> dict[str, Any]:
    """What a worker of ``role`` (ROLES) registers, as Worker options. ``workflows`` keeps the local
    activities (they run inside a workflow task, in its process) and polls no activity task;
    ``activities`` polls no workflow task. ``activities`` may hold test fakes under the real names."""
    if role not in ROLES:
        raise ValueError(f"unknown worker role {role!r}: one of {', '.join(ROLES)}")
    if role == "workflows":
        local = {_activity_name(fn) for fn in LOCAL_ACTIVITIES}
        activities = [a for a in activities if _activity_name(a) in local]
    return {
        "workflows": [] if role == "activities" else WORKFLOWS,
        "activities": activities,
        "no_remote_activities": role == "workflows",
    }


def _activity_name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__temporal_activity_definition").name)


def build_worker(
    client: Client, settings: Settings, executor: ThreadPoolExecutor, role: str = "all"
) -> Worker:
    """The worker of ``role``, its pollers scaled by the server's feedback.

    With the SDK's fixed five pollers per kind, workflow tasks waited in the server's task queue
    under load while the worker had CPU to spare: at 64 concurrent card payments, the Update a CMI
    callback waits for (``cmi_result``, one short workflow task) took 2.3 s at the median, 0.8 s
    with autoscaled pollers, and the callback's p99 went from 3.1 s to 1.7 to 2.4 s (bench/README.md).
    The maximum applies to each poller the SDK keeps (workflow tasks, sticky workflow tasks, activity
    tasks); activity polls also wait for one of the 32 activity slots.
    """
    most = settings.worker_max_pollers
    pollers = PollerBehaviorAutoscaling(maximum=most, initial=min(5, most))
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        **role_options(role),
        activity_executor=executor,
        max_concurrent_activities=32,
        workflow_task_poller_behavior=pollers,
        activity_task_poller_behavior=pollers,
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_grace_seconds),
        deployment_config=deployment_config(settings),
    )


def runtime(settings: Settings) -> Runtime:
    """Temporal's runtime with its metrics (the SDK's and ours, portnet/metrics.py) in Prometheus
    format on WORKER_METRICS_ADDRESS; the default runtime (no metrics) when that is empty."""
    if not settings.worker_metrics_address.strip():
        return Runtime.default()
    try:
        return Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=settings.worker_metrics_address.strip(),
                    histogram_bucket_overrides={PARTNER_CALLS.name: list(PARTNER_CALLS.buckets)},
                )
            )
        )
    except Exception:
        if settings.is_production:
            raise  # a worker nobody can watch is not started silently
        # Development: another process holds the port; the worker still runs, unobserved.
        logging.getLogger("worker").warning(
            "cannot serve metrics on %s; running without them", settings.worker_metrics_address, exc_info=True
        )
        return Runtime.default()


def stop_on_signals(worker: Worker) -> None:
    """SIGTERM (a redeploy, ``docker compose stop``) and SIGINT stop polling, let running activities
    finish within ``WORKER_SHUTDOWN_GRACE_SECONDS``, then cancel the rest, which Temporal retries on
    another worker. Killing activities mid-way instead made a retried e-mail go out twice."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _shutdown, worker, signum)


def _shutdown(worker: Worker, signum: int) -> None:
    logging.getLogger("worker").info(
        "%s: stopping, running activities may finish", signal.Signals(signum).name
    )
    _stopping.add(asyncio.ensure_future(worker.shutdown()))


_stopping: set[asyncio.Future[None]] = set()


def parse_role(argv: list[str] | None = None) -> str:
    """``--role`` on the command line, else WORKER_ROLE, else ``all``."""
    parser = argparse.ArgumentParser(description="The PortNet Payments Temporal worker.")
    parser.add_argument("--role", choices=ROLES, default=os.environ.get("WORKER_ROLE") or "all")
    return str(parser.parse_args(argv).role)


# A worker (re)started while Temporal itself restarts waits this long for it, instead of exiting at
# once and leaving the payments' tasks unpolled until something starts it again.
CONNECT_PATIENCE = timedelta(seconds=60)
CONNECT_PAUSES = (0.2, 0.5, 1.0, 2.0)  # then 2 s between tries


async def connect_patiently(
    connect: Callable[[], Awaitable[Client]],
    patience: timedelta = CONNECT_PATIENCE,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Client:
    """``connect()``, tried again while Temporal refuses connections, for up to ``patience``; the
    last refusal is raised after that (an orchestrator restarts the worker and alerts on it)."""
    deadline = clock() + patience.total_seconds()
    tries = 0
    while True:
        try:
            return await connect()
        except RuntimeError as err:  # the SDK's "Failed client connect: ..."
            if clock() >= deadline:
                raise
            pause = CONNECT_PAUSES[min(tries, len(CONNECT_PAUSES) - 1)]
            tries += 1
            logging.getLogger("worker").warning(
                "Temporal not reachable yet (%s); trying again in %s s", err, pause
            )
            await sleep(pause)


async def main(role: str = "all") -> None:
    settings = get_settings()
    configure_logging(settings, "portnet-worker")
    attempt_counts.install()
    refuse_unsafe_production(settings)
    tracing = telemetry.tracer_provider(settings, "portnet-worker")
    temporal_runtime = runtime(settings)
    client = await connect_patiently(
        lambda: Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=data_converter(settings),
            interceptors=telemetry.temporal_interceptors(tracing),
            runtime=temporal_runtime,
        )
    )
    # Reconciliation's Schedule, created or brought to the current settings (idempotent). A refusal
    # (say, a namespace without schedules) is logged and the worker still serves the payments.
    # The workflow side owns it: an activities-only worker runs no reconciliation workflow.
    try:
        if role != "activities":
            await ensure_schedules(client, settings)
    except RPCError as err:
        logging.getLogger("worker").error("reconciliation schedule not set: %s", err)
    with ThreadPoolExecutor(max_workers=32) as executor:
        worker = build_worker(client, settings, executor, role)
        stop_on_signals(worker)
        settle_heap()
        logging.getLogger("worker").info("polling task queue %s (%s)", settings.temporal_task_queue, role)
        try:
            await worker.run()
            await asyncio.gather(*_stopping)
        finally:
            await close_partner_clients()


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_role()))
    except KeyboardInterrupt:
        pass
    # The worker has shut down cleanly. The SDK's Rust threads can still be running when CPython
    # finalizes, which aborts the process ("PyGILState_Release", temporalio/sdk-python#300): leave
    # without the interpreter's teardown, so that a graceful stop exits 0.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
