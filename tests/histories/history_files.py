"""Reading a recorded history: the data converter, the file, and what the history shows.

Shared by the recorder (which checks each history before writing it) and the replay test.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter

from portnet.settings import get_settings
from portnet.temporal_codec import data_converter as portnet_data_converter
from tests.histories.manifest import HISTORIES, RecordedPath, path_of


def data_converter() -> DataConverter:
    """The data converter the worker uses: the payload codec's (portnet/temporal_codec.py).

    The replay test and the recorder both take it from here. The codec must still read the payloads
    of the histories already recorded (some before the codec existed: they pass through unencoded),
    as the worker must read the histories of attempts in flight.
    """
    return portnet_data_converter(get_settings())


# What a workflow's result or an Update's answer decides, as opposed to free text (reasons,
# messages) that may be reworded: these must come out of a replay as they were recorded.
OUTCOME_FIELDS = (
    "status",
    "error_code",
    "transaction_id",
    "receipt_document_id",
    "declines",
    "awaiting_emitters",
    "answer",
    "outcome",
    "receipt_number",
    "accepted",
    "result",
    "attempts_left",
    "resends_left",
    "expires_at",
    "pages_done",
    "received",
    "created",
    "updated",
    "kept",
    "invoice_ids",
)

CLOSING = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued_as_new",
}


@dataclass
class UpdateRecord:
    name: str
    answer: Payload | None = None  # None: the Update failed (or never completed)


@dataclass
class HistoryFacts:
    workflow_type: str
    workflow_id: str  # as the Temporal server records it; the time-skipping test server leaves it empty
    closing: str | None
    messages: Counter[str]
    result: Payload | None
    updates: dict[str, UpdateRecord] = field(default_factory=dict)


def history_files(folder: Path = HISTORIES) -> list[Path]:
    return sorted(folder.glob("*.json"))


def load(file: Path) -> tuple[RecordedPath, WorkflowHistory]:
    path = path_of(file)
    if path is None:
        raise LookupError(
            f"{file.name}: not a path of tests/histories/manifest.py (name it <path>[.<version>].json)"
        )
    return path, WorkflowHistory.from_json(path.workflow_id, file.read_text(encoding="utf-8"))


def facts(history: WorkflowHistory) -> HistoryFacts:
    events = list(history.events)
    started = events[0].workflow_execution_started_event_attributes
    found = HistoryFacts(
        workflow_type=started.workflow_type.name,
        workflow_id=started.workflow_id,
        closing=CLOSING.get(events[-1].event_type),
        messages=Counter(),
        result=None,
    )
    for event in events:
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            found.messages[request.input.name] += 1
            found.updates[request.meta.update_id] = UpdateRecord(request.input.name)
        elif event.HasField("workflow_execution_update_completed_event_attributes"):
            completed = event.workflow_execution_update_completed_event_attributes
            record = found.updates.get(completed.meta.update_id)
            if record is not None and completed.outcome.HasField("success"):
                payloads = completed.outcome.success.payloads
                record.answer = payloads[0] if payloads else None
        elif event.HasField("workflow_execution_signaled_event_attributes"):
            found.messages[event.workflow_execution_signaled_event_attributes.signal_name] += 1
        elif event.HasField("workflow_execution_completed_event_attributes"):
            payloads = event.workflow_execution_completed_event_attributes.result.payloads
            found.result = payloads[0] if payloads else None
    return found


async def decoded(payload: Payload) -> Any:
    """A payload as plain JSON values (dataclasses become dicts), through the worker's converter."""
    [value] = await data_converter().decode([payload])
    return value


async def plain(value: Any) -> Any:
    """A value the workflow produced, as the converter would have written it, in plain JSON values."""
    [payload] = await data_converter().encode([value])
    return await decoded(payload)


def outcome_differences(recorded: Any, replayed: Any) -> tuple[list[str], list[str]]:
    """The outcome fields both sides have, and those among them that differ."""
    if not isinstance(recorded, dict) or not isinstance(replayed, dict):
        same = json.dumps(recorded, sort_keys=True) == json.dumps(replayed, sort_keys=True)
        return ["(value)"], [] if same else [f"{recorded!r} != {replayed!r}"]
    compared = [key for key in OUTCOME_FIELDS if key in recorded and key in replayed]
    differing = [
        f"{key}: {recorded[key]!r} != {replayed[key]!r}" for key in compared if recorded[key] != replayed[key]
    ]
    return compared, differing


async def mismatches(path: RecordedPath, found: HistoryFacts) -> list[str]:
    """What the history does not show of what its manifest entry says (empty when all is there)."""
    problems: list[str] = []
    if found.workflow_type != path.workflow:
        problems.append(f"workflow type {found.workflow_type}, expected {path.workflow}")
    if found.workflow_id and found.workflow_id != path.workflow_id:
        problems.append(f"workflow id {found.workflow_id}, expected {path.workflow_id}")
    expected_closing = "completed" if path.status is not None else "canceled"
    if found.closing != expected_closing:
        problems.append(f"history closes {found.closing}, expected {expected_closing}")
    missing = Counter(path.messages) - found.messages
    if missing:
        problems.append(f"messages missing: {dict(missing)}")
    if path.status is not None:
        result = await decoded(found.result) if found.result is not None else None
        status = result.get("status") if isinstance(result, dict) else None
        if status != path.status:
            problems.append(f"final status {status!r}, expected {path.status!r}")
    return problems
