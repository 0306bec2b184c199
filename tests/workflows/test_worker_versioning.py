"""Worker Deployment Versioning: a payment attempt stays pinned to the worker version that began it.

Compose gives every worker TEMPORAL_DEPLOYMENT_NAME and a TEMPORAL_BUILD_ID (the release); attempts
live up to 30 days, so a release that changes workflow code beyond what ``workflow.patched`` can
carry must not replay old attempts on new code. This runs on the real dev server, as production's
cluster would: the worker polls as a deployment version, the version is made current, and the
attempt it starts is recorded as pinned to it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio.api.enums.v1 import VersioningBehavior as VersioningBehaviorProto
from temporalio.api.workflowservice.v1 import SetWorkerDeploymentCurrentVersionRequest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import PollerBehaviorAutoscaling

from portnet.models import Invoice
from portnet.settings import Settings, get_settings
from tests.support.workers import payment_input, start
from worker import build_worker, deployment_config


def test_a_deployment_version_needs_both_its_name_and_build_id() -> None:
    assert deployment_config(get_settings()) is None
    with pytest.raises(ValueError, match="TEMPORAL_BUILD_ID"):
        Settings(portnet_env="development", temporal_deployment_name="portnet-payments")
    config = deployment_config(
        Settings(
            portnet_env="development",
            temporal_deployment_name="portnet-payments",
            temporal_build_id="2026.11",
        )
    )
    assert config is not None and config.use_worker_versioning
    assert (config.version.deployment_name, config.version.build_id) == ("portnet-payments", "2026.11")


async def test_an_attempt_is_pinned_to_the_version_that_started_it(
    dev_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice]
) -> None:
    client = dev_env.client
    name, build_id = f"portnet-{uuid.uuid4().hex[:8]}", "2026.11.30"
    settings = get_settings().model_copy(
        update={
            "temporal_task_queue": f"versioned-{uuid.uuid4().hex[:8]}",
            "temporal_deployment_name": name,
            "temporal_build_id": build_id,
        }
    )
    invoice = make_invoice()
    inp = payment_input(invoice.company_id, [invoice.id or 0], deadline=3600)
    inp.channel, inp.declaration = "cheque", {"cheque_number": "1234567", "bank": "CIH Bank"}
    with ThreadPoolExecutor(max_workers=32) as executor:
        async with build_worker(client, settings, executor):
            # The version exists once the worker has polled; then it is made current.
            for _ in range(100):
                try:
                    await client.workflow_service.set_worker_deployment_current_version(
                        SetWorkerDeploymentCurrentVersionRequest(
                            namespace=client.namespace, deployment_name=name, build_id=build_id
                        )
                    )
                    break
                except RPCError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the worker's deployment version never registered")
            handle = await start(client, inp, settings.temporal_task_queue)
            try:
                for _ in range(100):
                    info = (await handle.describe()).raw_description.workflow_execution_info.versioning_info
                    if info.behavior:
                        break
                    await asyncio.sleep(0.1)
                assert info.behavior == VersioningBehaviorProto.VERSIONING_BEHAVIOR_PINNED
                assert (info.deployment_version.deployment_name, info.deployment_version.build_id) == (
                    name,
                    build_id,
                )
            finally:
                await handle.terminate("test over")


async def test_workers_scale_their_pollers_up_to_the_setting(dev_env: WorkflowEnvironment) -> None:
    """Fixed pollers left workflow tasks queued on the server while the worker had CPU to spare."""
    with ThreadPoolExecutor(max_workers=32) as executor:
        for most, initial in ((7, 5), (2, 2)):  # the SDK's initial five, never above the maximum
            for role in ("workflows", "activities"):
                settings = get_settings().model_copy(
                    update={
                        "worker_max_pollers": most,
                        "temporal_task_queue": f"pollers-{uuid.uuid4().hex[:8]}",
                    }
                )
                # Built by the SDK's core, which refuses an initial count above the maximum.
                worker = build_worker(dev_env.client, settings, executor, role)
                expected = PollerBehaviorAutoscaling(maximum=most, initial=initial)
                for kind in ("workflow_task_poller_behavior", "activity_task_poller_behavior"):
                    assert worker.config()[kind] == expected  # type: ignore[literal-required]
