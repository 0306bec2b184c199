"""The Temporal Schedules the system runs: today, reconciliation every few minutes.

``ensure_schedules`` creates the schedule, or updates it to the current settings if it exists, so it
is safe at every worker start (several replicas included) and from ``python -m portnet.cli
schedules``. Schedules show in the Temporal Web UI (Schedules), where finance sees each run. The
workflow is named by its type name: this module sits below the workflows and imports none of them.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from portnet.settings import Settings

log = logging.getLogger("portnet.schedules")

RECONCILIATION_SCHEDULE_ID = "reconciliation"
RECONCILIATION_WORKFLOW = "ReconciliationWorkflow"


# What the Temporal Web UI shows finance of each pass (French, like the workflows' own texts).
RECONCILIATION_DETAILS = (
    "**Rapprochement** : les rappels partenaires restés sans suite et les tentatives dont le grand "
    "livre a perdu l'issue, revus auprès des partenaires. Les constats sont dans "
    "**Finance > Rapprochement**.\n"
)


def reconciliation_summary(interval_seconds: int) -> str:
    every = f"{interval_seconds // 60} min" if interval_seconds % 60 == 0 else f"{interval_seconds} s"
    return f"Rapprochement des issues perdues — toutes les {every}"


def reconciliation_schedule(settings: Settings, task_queue: str | None = None) -> Schedule:
    """Every RECONCILIATION_INTERVAL_SECONDS; a pass still running makes the next one skip."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILIATION_WORKFLOW,
            id="reconciliation-run",
            task_queue=task_queue or settings.temporal_task_queue,
            execution_timeout=timedelta(hours=1),
            static_summary=reconciliation_summary(settings.reconciliation_interval_seconds),
            static_details=RECONCILIATION_DETAILS,
        ),
        spec=ScheduleSpec(
            intervals=[
                ScheduleIntervalSpec(every=timedelta(seconds=settings.reconciliation_interval_seconds))
            ]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_schedules(client: Client, settings: Settings, task_queue: str | None = None) -> None:
    schedule = reconciliation_schedule(settings, task_queue)
    try:
        await client.create_schedule(RECONCILIATION_SCHEDULE_ID, schedule)
        log.info("schedule %s created", RECONCILIATION_SCHEDULE_ID)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(RECONCILIATION_SCHEDULE_ID).update(replace)
        log.info("schedule %s updated", RECONCILIATION_SCHEDULE_ID)
