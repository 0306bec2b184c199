"""Reconciliation: one run as its Schedule starts it (no input), over the world's candidates."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle

from tests.histories.manifest import RecordedPath
from tests.histories.recording import Recording
from tests.histories.scenarios.common import Scenario
from workflows.reconciliation import ReconciliationWorkflow


async def run(r: Recording, path: RecordedPath) -> WorkflowHandle[Any, Any]:
    await r.client.start_workflow(ReconciliationWorkflow.run, id=path.workflow_id, task_queue=r.task_queue)
    return r.client.get_workflow_handle(path.workflow_id)


SCENARIOS: dict[str, Scenario] = {"reconciliation_run": run}
