"""The Temporal worker: every workflow and every activity, on one task queue.

Ledger activities are synchronous (SQLAlchemy), so they run on a thread pool; partner and mail
activities are async and run on the event loop. Every payload the worker reads or writes goes through
the client's data converter, which encrypts it (portnet/temporal_codec.py). Its metrics (Temporal SDK's
and ours) are served in Prometheus format on WORKER_METRICS_ADDRESS; traces and JSON logs as the
portal's (portnet/telemetry.py, portnet/logs.py).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities import ACTIVITIES
from portnet import telemetry
from portnet.logs import configure_logging
from portnet.metrics import PARTNER_CALLS
from portnet.production import refuse_unsafe_production
from portnet.settings import Settings, get_settings
from portnet.temporal_codec import data_converter
from workflows import WORKFLOWS

__all__ = ["ACTIVITIES", "WORKFLOWS", "build_worker"]


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=ACTIVITIES,
        activity_executor=executor,
        max_concurrent_activities=32,
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


async def main() -> None:
    settings = get_settings()
    configure_logging(settings, "portnet-worker")
    refuse_unsafe_production(settings)
    tracing = telemetry.tracer_provider(settings, "portnet-worker")
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        interceptors=telemetry.temporal_interceptors(tracing),
        runtime=runtime(settings),
    )
    with ThreadPoolExecutor(max_workers=32) as executor:
        worker = build_worker(client, settings, executor)
        logging.getLogger("worker").info("polling task queue %s", settings.temporal_task_queue)
        await worker.run()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
