"""The Temporal worker: every workflow and every activity, on one task queue.

Ledger activities are synchronous (SQLAlchemy), so they run on a thread pool; partner and mail
activities are async and run on the event loop. Every payload the worker reads or writes goes through
the client's data converter, which encrypts it (portnet/temporal_codec.py).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities import ACTIVITIES
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


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    refuse_unsafe_production(settings)
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
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
