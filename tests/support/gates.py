"""Controlled activities for racing a workflow deterministically: an activity that waits until the
test opens its gate, and a probe that waits until the workflow has taken a message in.

A test writes its controlled activity under the real activity's name and types (so the workflow under
test is the production one): it awaits ``gate.passing()``, then answers, or runs the real activity.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import UpdateRef, WaitPolicy
from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from tests.support.workers import eventually


@dataclass
class Gate:
    """Counts the calls of one activity; the first ``held`` calls wait for ``open``."""

    held: int = 1
    calls: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    def open(self) -> None:
        self.opened.set()

    async def passing(self) -> None:
        """What the activity does before it answers: count, and wait while the gate is shut."""
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.started.set()
        try:
            if self.calls <= self.held:
                await self.opened.wait()
        finally:
            self.in_flight -= 1

    async def reached(self, timeout: float = 20.0) -> None:
        await asyncio.wait_for(self.started.wait(), timeout)


async def taken_in(handle: WorkflowHandle[Any, Any], event: EventType.ValueType, count: int = 1) -> None:
    """Waits until the workflow has received ``count`` events of that type and completed a workflow
    task after the last of them: the message was handled, whatever it started."""

    async def probe() -> bool:
        history = await handle.fetch_history()
        seen = [e.event_id for e in history.events if e.event_type == event]
        if len(seen) < count:
            return False
        return any(
            e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and e.event_id > seen[count - 1]
            for e in history.events
        )

    await eventually(probe)


async def activity_spans(handle: WorkflowHandle[Any, Any], name: str) -> list[tuple[int, int]]:
    """(scheduled, closed) event ids of each run of activity ``name``, in history order."""
    history = await handle.fetch_history()
    scheduled: dict[int, int] = {}
    spans: list[tuple[int, int]] = []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if e.activity_task_scheduled_event_attributes.activity_type.name == name:
                scheduled[e.event_id] = e.event_id
        for attributes in (
            "activity_task_completed_event_attributes",
            "activity_task_failed_event_attributes",
            "activity_task_timed_out_event_attributes",
            "activity_task_canceled_event_attributes",
        ):
            if e.HasField(attributes):
                scheduled_id = getattr(e, attributes).scheduled_event_id
                if scheduled_id in scheduled:
                    spans.append((scheduled.pop(scheduled_id), e.event_id))
    spans.extend((s, 1 << 62) for s in scheduled.values())
    return sorted(spans)


async def admitted(client: Client, workflow_id: str, update_id: str) -> None:
    """Waits until the server has admitted the Update (before any worker accepted it): Updates admitted
    while no worker polls reach the workflow together, in one workflow task."""

    async def probe() -> bool:
        request = PollWorkflowExecutionUpdateRequest(
            namespace=client.namespace,
            update_ref=UpdateRef(
                workflow_execution=WorkflowExecution(workflow_id=workflow_id), update_id=update_id
            ),
            identity="test",
            wait_policy=WaitPolicy(
                lifecycle_stage=UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED
            ),
        )
        try:
            await client.workflow_service.poll_workflow_execution_update(
                request, timeout=timedelta(seconds=2)
            )
        except RPCError:
            return False
        return True

    await eventually(probe)
