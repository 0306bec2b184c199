"""The worker's roles (worker.py ``--role``): a workflow worker and an activities worker on one task
queue pay as the single worker does, and each registers only its part.

Split in two processes, workflow activations (which answer the portal's Updates) no longer wait for
the GIL behind receipts and e-mails; that only holds if the workflow worker polls no activity task,
and if it keeps every local activity, since those run inside its own workflow tasks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from activities.cmi_card import CAPTURED
from portnet.models import Invoice
from tests.support.fakes import CmiBank, PartnerFakes
from tests.support.ledger import refreshed
from tests.support.workers import (
    activity_name,
    offline_input,
    payment_input,
    start,
    wait_status,
    worker_with_fakes,
)
from worker import ACTIVITIES, LOCAL_ACTIVITIES, WORKFLOWS, parse_role, role_options
from workflows.payment import PaymentWorkflow
from workflows.types import CmiResult, FinanceDecision

WORKFLOWS_DIR = Path(__file__).resolve().parents[2] / "workflows"
_LOCAL_CALL = re.compile(r"(?:execute|start)_local_activity\(\s*([\w.]+)")


def test_the_workflow_worker_keeps_every_local_activity_the_workflows_run() -> None:
    called = {
        match.group(1).rsplit(".", 1)[-1]
        for path in WORKFLOWS_DIR.rglob("*.py")
        for match in _LOCAL_CALL.finditer(path.read_text())
    }
    assert called, "no local activity found: the pattern no longer matches the workflows' calls"
    assert called == {activity_name(fn) for fn in LOCAL_ACTIVITIES}


def test_each_role_registers_only_its_part() -> None:
    workflows = role_options("workflows")
    assert workflows["workflows"] == WORKFLOWS and workflows["no_remote_activities"] is True
    assert [activity_name(a) for a in workflows["activities"]] == [activity_name(a) for a in LOCAL_ACTIVITIES]
    activities = role_options("activities")
    assert activities == {"workflows": [], "activities": ACTIVITIES, "no_remote_activities": False}
    assert role_options("all") == {
        "workflows": WORKFLOWS,
        "activities": ACTIVITIES,
        "no_remote_activities": False,
    }
    with pytest.raises(ValueError, match="unknown worker role"):
        role_options("reconciliation")


def test_the_role_comes_from_the_command_line_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKER_ROLE", raising=False)
    assert parse_role([]) == "all"
    monkeypatch.setenv("WORKER_ROLE", "activities")
    assert parse_role([]) == "activities"
    assert parse_role(["--role", "workflows"]) == "workflows"
    with pytest.raises(SystemExit):
        parse_role(["--role", "everything"])


async def test_a_card_payment_completes_on_a_workflow_worker_and_an_activities_worker(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """The card form (a local activity) comes from the workflow worker, the ledger, CMI's API and the
    e-mail from the activities worker; the approval is answered and the attempt settles."""
    invoice = make_invoice()
    bank = CmiBank(state=CAPTURED)
    fakes = PartnerFakes()
    inp = payment_input(invoice.company_id, [invoice.id or 0])
    doubles = fakes.silent_emitters() + bank.activities()
    async with (
        worker_with_fakes(time_env.client, doubles, role="workflows") as queue,
        worker_with_fakes(time_env.client, doubles, task_queue=queue, role="activities"),
    ):
        handle = await start(time_env.client, inp, queue)
        view = await wait_status(handle, "awaiting_payer")
        assert view.next_action is not None and view.next_action.fields is not None
        assert view.next_action.fields["oid"] == inp.payment_id
        decision = await handle.execute_update(
            PaymentWorkflow.cmi_result,
            CmiResult(
                callback_id=1,
                approved=True,
                proc_return_code="00",
                trans_id="T-ROLES",
                amount="120.00",
                auth_code="123456",
                masked_pan="400000******0010",
            ),
        )
        assert decision.answer == "ACTION=POSTAUTH"
        result = await handle.result()
    assert result.status == "succeeded" and result.receipt_document_id is not None
    assert bank.queries == ["T-ROLES"]
    assert refreshed(db, invoice).status == "paid"
    assert [kind for kind, _ in fakes.mails] == ["payment_confirmed"]


async def test_a_cheque_completes_on_a_workflow_worker_and_an_activities_worker(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = offline_input(invoice.company_id, [invoice.id or 0], "cheque")
    doubles = PartnerFakes().fatourati_and_mail()
    async with (
        worker_with_fakes(time_env.client, doubles, role="activities") as queue,
        worker_with_fakes(time_env.client, doubles, task_queue=queue, role="workflows"),
    ):
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_confirmation")
        await handle.signal(PaymentWorkflow.finance_decision, FinanceDecision(True, "finance", "remise 42"))
        result = await handle.result()
    assert result.status == "succeeded"
    assert refreshed(db, invoice).status == "paid"
