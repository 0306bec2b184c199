"""The bare baseline of bench.e2e_card: the card payment as the goal was set against it, no-ops, one signal.

PaymentWorkflow, for one PORTNET invoice paid by card, runs ``reserve_invoices`` (regular),
``build_card_form`` (local), then waits for CMI's callback (an Update), ``settle_payment`` and
``send_payment_email`` (regular): 3 regular activities + 1 local one, the shape the goal was set
against (today's card payment also watches CMI's capture and issues its receipt after the
settlement: ``CARD_PAYMENT_REGULAR_ACTIVITIES``). ``BareWorkflow`` keeps that shape with trivial
no-op activities: one activity, wait for a signal, two activities. It has its
own task queue and its own worker process (``python -m bench.bare worker``), like the real worker.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling, Worker

# What PaymentWorkflow runs today for one PORTNET invoice paid by card whose capture CMI shows at
# once (see workflows/payment.py). The bare workflow keeps the shape the goal was set against: three
# regular activities and a signal.
CARD_PAYMENT_REGULAR_ACTIVITIES = (
    "reserve_invoices",
    "watch_card_capture",
    "settle_payment",
    "issue_receipt",
    "send_payment_email",
)
CARD_PAYMENT_LOCAL_ACTIVITIES = ("build_card_form",)


@activity.defn
async def bare_reserve(payment_id: str) -> str:
    return payment_id


@activity.defn
async def bare_settle(payment_id: str) -> str:
    return payment_id


@activity.defn
async def bare_email(payment_id: str) -> str:
    return payment_id


BARE_ACTIVITIES = [bare_reserve, bare_settle, bare_email]
TIMEOUT = timedelta(seconds=30)


@workflow.defn
class BareWorkflow:
    def __init__(self) -> None:
        self._approved = False

    @workflow.signal
    def approve(self) -> None:
        self._approved = True

    @workflow.run
    async def run(self, payment_id: str) -> str:
        await workflow.execute_activity(bare_reserve, payment_id, start_to_close_timeout=TIMEOUT)
        await workflow.wait_condition(lambda: self._approved, timeout=TIMEOUT)
        await workflow.execute_activity(bare_settle, payment_id, start_to_close_timeout=TIMEOUT)
        await workflow.execute_activity(bare_email, payment_id, start_to_close_timeout=TIMEOUT)
        return payment_id


def build_bare_worker(client: Client, task_queue: str) -> Worker:
    # Same limits and pollers as worker.build_worker.
    pollers = PollerBehaviorAutoscaling(maximum=100)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BareWorkflow],
        activities=BARE_ACTIVITIES,
        max_concurrent_activities=32,
        workflow_task_poller_behavior=pollers,
        activity_task_poller_behavior=pollers,
    )


async def _serve(address: str, namespace: str, task_queue: str) -> None:
    # Imported here, not at the top: this module defines a workflow, which the sandbox re-imports.
    from portnet.settings import get_settings
    from portnet.temporal_codec import data_converter

    # Sealed like the real worker's payloads, so the baseline pays the same encryption cost.
    client = await Client.connect(address, namespace=namespace, data_converter=data_converter(get_settings()))
    worker = build_bare_worker(client, task_queue)
    logging.getLogger("bench.bare").info("polling task queue %s", task_queue)
    await worker.run()


def main() -> None:
    parser = argparse.ArgumentParser(description="Worker of the bare baseline workflow (bench.e2e_card).")
    parser.add_argument("command", choices=["worker"])
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s bare-worker %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_serve(args.address, args.namespace, args.task_queue))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
