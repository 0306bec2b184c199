"""What every scenario module shares: the scenario type and a check that says what went wrong."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import WorkflowHandle

from tests.histories.manifest import RecordedPath
from tests.histories.recording import Recording

# A scenario drives one path up to its last message and returns the run; the recorder waits for the
# run to close (skipping time), then saves its history.
Scenario = Callable[[Recording, RecordedPath], Awaitable[WorkflowHandle[Any, Any]]]


class PathNotTaken(AssertionError):
    """The workflow did not do what the path says: nothing is written for it."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise PathNotTaken(what)
