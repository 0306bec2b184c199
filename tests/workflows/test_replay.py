"""Today's workflow code replays every recorded history: a workflow change is a deployment.

Payment attempts live for days (a cheque up to 30, a cash code 72 hours, the emitters' acknowledgement
7 days), so a worker restarted on new code resumes attempts started by the old one by replaying their
histories. tests/histories/ holds histories recorded from the code of the day for every path; each
must replay without nondeterminism, with the workflows registered as worker.py registers them and
the worker's data converter, and must end as it ended when recorded: same final status, same answer
to every Update (see OUTCOME_FIELDS). Where new code must behave differently for an attempt in
flight, ``workflow.patched`` keeps the old path for old histories (tests/histories/README.md).
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleUpdateInput,
    Interceptor,
    Replayer,
    UnsandboxedWorkflowRunner,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from activities import mail
from activities.mail import EmailInput
from portnet.statuses import PaymentStatus
from tests.histories.history_files import (
    data_converter,
    decoded,
    facts,
    history_files,
    load,
    mismatches,
    outcome_differences,
    plain,
)
from tests.histories.manifest import HISTORIES, path_of, required_files
from tests.histories.record import record, start_server
from worker import WORKFLOWS
from workflows.payment import PaymentWorkflow
from workflows.types import PaymentInput, PaymentView

FILES = history_files()

# What each replayed run produced, by run id: its result and its answer to every Update (by id).
REPLAYED: dict[str, dict[str, Any]] = {}


class _OutcomeCapture(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _CaptureInbound


class _CaptureInbound(WorkflowInboundInterceptor):
    """Copies the run's result and each Update's answer as they are produced (views are mutable)."""

    @staticmethod
    def _run() -> dict[str, Any]:
        return REPLAYED.setdefault(workflow.info().run_id, {"result": None, "updates": {}})

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        result = await super().execute_workflow(input)
        self._run()["result"] = copy.deepcopy(result)
        return result

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        answer = await super().handle_update_handler(input)
        self._run()["updates"][input.id] = copy.deepcopy(answer)
        return answer


def replayer(workflows: list[type] | None = None, sandboxed: bool = True) -> Replayer:
    """Configured as worker.build_worker configures the worker (workflows, converter, sandbox)."""
    if sandboxed:
        return Replayer(
            workflows=workflows or WORKFLOWS,
            data_converter=data_converter(),
            interceptors=[_OutcomeCapture()],
        )
    return Replayer(
        workflows=workflows or WORKFLOWS,
        data_converter=data_converter(),
        interceptors=[_OutcomeCapture()],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


async def replay_problems(file: Path, with_replayer: Replayer) -> list[str]:
    """Why this history does not replay as recorded on the given workers' code (empty: it does)."""
    _, history = load(file)
    REPLAYED.pop(history.run_id, None)
    outcome = await with_replayer.replay_workflow(history, raise_on_replay_failure=False)
    if outcome.replay_failure is not None:
        text = str(outcome.replay_failure)
        found = re.search(r'message: "(.*?)", source', text)
        return [
            f"replay failed ({type(outcome.replay_failure).__name__}): {found.group(1) if found else text}"
        ]
    problems: list[str] = []
    recorded = facts(history)
    replayed = REPLAYED.get(history.run_id, {"result": None, "updates": {}})
    if recorded.result is not None:
        compared, differing = outcome_differences(
            await decoded(recorded.result), await plain(replayed["result"])
        )
        problems += [f"result {d}" for d in differing] or ([] if compared else ["result: nothing to compare"])
    for update_id, update in recorded.updates.items():
        if update.answer is None:
            continue
        if update_id not in replayed["updates"]:
            problems.append(f"Update {update.name} ({update_id}) not answered on replay")
            continue
        compared, differing = outcome_differences(
            await decoded(update.answer), await plain(replayed["updates"][update_id])
        )
        problems += [f"Update {update.name}: {d}" for d in differing]
        if not compared:
            problems.append(f"Update {update.name}: nothing to compare")
    return problems


def test_every_path_has_its_history() -> None:
    """A deleted or never recorded history is noticed; so is a file no manifest entry explains."""
    present = {file.name for file in FILES}
    missing = [name for name in required_files() if name not in present]
    assert not missing, f"no recorded history for {missing}: python -m tests.histories.record"
    unknown = [file.name for file in FILES if path_of(file) is None]
    assert not unknown, f"histories that no path of tests/histories/manifest.py explains: {unknown}"


@pytest.mark.parametrize("file", FILES, ids=[file.stem for file in FILES])
async def test_history_shows_its_path(file: Path) -> None:
    path, history = load(file)
    assert await mismatches(path, facts(history)) == []


@pytest.mark.parametrize("file", FILES, ids=[file.stem for file in FILES])
async def test_history_replays_on_todays_code(file: Path) -> None:
    problems = await replay_problems(file, replayer())
    assert problems == [], f"{file.name} does not replay as recorded: {problems}"


# --- the test has teeth: changed workflow code is caught ------------------------------------------


# Both wrap today's PaymentWorkflow through its run method only, so they stay valid when its insides move.


@workflow.defn(name="PaymentWorkflow")
class _MailFirst(PaymentWorkflow):
    """Today's workflow with one more activity, before the reservation: a new command in old histories."""

    @workflow.run
    async def run(self, inp: PaymentInput) -> PaymentView:
        await workflow.execute_activity(
            mail.send_payment_email,
            EmailInput(inp.payment_id, inp.payer.email, "payment_confirmed"),
            start_to_close_timeout=timedelta(seconds=30),
        )
        return await super().run(inp)


@workflow.defn(name="PaymentWorkflow")
class _ExpiryCalledCancel(PaymentWorkflow):
    """Today's workflow, same commands, but an expired attempt ends "cancelled": an outcome change."""

    @workflow.run
    async def run(self, inp: PaymentInput) -> PaymentView:
        view = await super().run(inp)
        view.status = (
            PaymentStatus.CANCELLED.value if view.status == PaymentStatus.EXPIRED.value else view.status
        )
        return view


def _file(name: str) -> Path:
    return HISTORIES / f"{name}.json"


async def test_an_added_activity_does_not_replay() -> None:
    problems = await replay_problems(_file("payment_card_approved"), replayer([_MailFirst], sandboxed=False))
    assert len(problems) == 1 and "NondeterminismError" in problems[0], problems
    assert (
        "'reserve_invoices' does not match activity type of activity command 'send_payment_email'"
        in (problems[0])
    )


async def test_a_changed_outcome_is_caught_even_with_the_same_commands() -> None:
    problems = await replay_problems(
        _file("payment_card_expired"), replayer([_ExpiryCalledCancel], sandboxed=False)
    )
    assert problems == ["result status: 'expired' != 'cancelled'"], problems


# --- the recorder still records from today's code (it is needed for the next version) ----------


async def test_recorder_records_histories_that_replay(tmp_path: Path) -> None:
    # A server of its own, as the recorder runs it: the session's time-skipping server may be left
    # by earlier tests with work no worker will ever finish, which stops its clock from skipping.
    env = await start_server(dev_server=False)
    try:
        names = ["payment_card_declined_then_approved", "payment_paydirect_resend_then_right_code"]
        written = await record(
            env, names, folder=tmp_path, task_queue=f"record-{uuid.uuid4().hex[:8]}", log=False
        )
    finally:
        await env.shutdown()
    assert [file.name for file in written] == [f"{name}.json" for name in names]
    for file in written:
        assert await replay_problems(file, replayer()) == []
