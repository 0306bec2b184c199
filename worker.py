"""The Temporal worker: runs the payment workflow and every activity on one task queue.

Ledger activities are synchronous (SQLAlchemy), so they run on a thread pool; partner and mail
activities are async and run on the event loop. Every payload the worker reads or writes goes through
the client's data converter, which encrypts it (portnet/temporal_codec.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities import amanpay, amanpay_mail, cmi, emitters, fatourati, ledger, marsa_maroc, notify, offline
from portnet.production import refuse_unsafe_production
from portnet.settings import Settings, get_settings
from portnet.temporal_codec import data_converter
from workflows.marsa_request import MarsaRequestWorkflow
from workflows.payment import PaymentWorkflow

WORKFLOWS = [PaymentWorkflow, MarsaRequestWorkflow]
ACTIVITIES: list[Callable[..., Any]] = [
    ledger.reserve_invoices,
    ledger.settle_payment,
    ledger.release_invoices,
    ledger.mark_invoices_paid,
    cmi.build_card_form,
    notify.send_payment_email,
    emitters.send_settlement_notice,
    # Issue 4: CMI Fatourati, cheque and bank transfer.
    fatourati.create_token,
    fatourati.cancel_token,
    fatourati.send_channel_email,
    offline.record_declaration,
    offline.log_finance_decision,
    offline.renew_subscriptions,
    amanpay.create_order,
    amanpay.cancel_order,
    amanpay.paydirect_start,
    amanpay.paydirect_resend,
    amanpay.paydirect_verify,
    amanpay_mail.send_code_email,
    # Issue 5: MARSA MAROC invoice requests.
    marsa_maroc.fetch_invoice_page,
    marsa_maroc.upsert_invoices,
]


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
