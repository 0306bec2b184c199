"""ReconciliationWorkflow: one pass over the ledger's lost outcomes, every few minutes.

Started by the Temporal Schedule ``reconciliation`` (portnet/schedules.py, overlap policy skip: one
pass at a time), visible in the Web UI's Schedules. A pass finds the candidates (stuck partner
calls, attempts overdue with invoices held, attempts closed lately on a channel whose partner can
be asked), settles each in its own activity (activities/reconciliation.py) and closes the run with
its totals, which finance reads on the reconciliation page. A check that still fails after its
retries is counted as an error and found again by the next pass. Deterministic: I/O in activities.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import reconciliation
    from activities.reconciliation import AttemptCheck, RunTotals
    from activities.stuck_callbacks import CallbackCheck
    from workflows import details
    from workflows.policies import LEDGER_RETRY, LEDGER_TIMEOUT, RECONCILE_RETRY, RECONCILE_TIMEOUT


@dataclass
class ReconciliationReport:
    run_id: str
    status: str = "completed"
    candidates: int = 0
    findings: int = 0
    errors: int = 0
    outcomes: list[str] = field(default_factory=list)


@workflow.defn
class ReconciliationWorkflow:
    @workflow.run
    async def run(self) -> ReconciliationReport:
        report = ReconciliationReport(run_id=workflow.info().run_id)
        found = await workflow.execute_activity(
            reconciliation.find_reconciliation_candidates,
            report.run_id,
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
            summary="Recherche des issues perdues",
        )
        report.candidates = len(found.callbacks) + len(found.attempts)
        workflow.set_current_details(details.reconciliation_phase(report.candidates, 0, None, 0))
        done = 0
        for callback_id in found.callbacks:
            try:
                outcome = await workflow.execute_activity(
                    reconciliation.reconcile_callback,
                    CallbackCheck(report.run_id, callback_id),
                    start_to_close_timeout=RECONCILE_TIMEOUT,
                    retry_policy=RECONCILE_RETRY,
                    summary=f"Rappel partenaire n° {callback_id} revu",
                )
                report.outcomes.append(f"stuck_callback:{outcome}")
            except ActivityError:
                report.errors += 1
            done += 1
            workflow.set_current_details(
                details.reconciliation_phase(report.candidates, done, None, report.errors)
            )
        for payment_id in found.attempts:
            try:
                outcomes = await workflow.execute_activity(
                    reconciliation.reconcile_attempt,
                    AttemptCheck(report.run_id, payment_id),
                    start_to_close_timeout=RECONCILE_TIMEOUT,
                    retry_policy=RECONCILE_RETRY,
                    summary=f"Tentative {payment_id} revue",
                )
                report.outcomes.extend(outcomes)
            except ActivityError:
                report.errors += 1
            done += 1
            workflow.set_current_details(
                details.reconciliation_phase(report.candidates, done, None, report.errors)
            )
        report.findings = await workflow.execute_activity(
            reconciliation.finish_reconciliation_run,
            RunTotals(report.run_id, report.candidates, report.errors),
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
            summary="Bilan du rapprochement",
        )
        workflow.set_current_details(
            details.reconciliation_phase(report.candidates, done, report.findings, report.errors)
        )
        return report
