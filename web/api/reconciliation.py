"""Finance's reconciliation report as JSON: the last runs, the open findings and every finding counted.

Finance (and admin) only: a client gets 403, nobody logged in 401.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from portnet import reconciliation
from web.api.schemas import ErrorOut
from web.deps import DB, FinanceUser

router = APIRouter(prefix="/api/v1/finance", tags=["finance"])


@router.get("/reconciliation", responses={code: {"model": ErrorOut} for code in (401, 403)})
def reconciliation_report(user: FinanceUser, db: DB, all: bool = False) -> dict[str, Any]:
    """``findings``: those finance must act on or watch (unapplied money, attempts left overdue),
    or every recent one with ``all=true``; ``totals``: every finding by kind and outcome."""
    return {
        "runs": [reconciliation.run_json(r) for r in reconciliation.last_runs(db)],
        "findings": [reconciliation.finding_json(f) for f in reconciliation.findings(db, open_only=not all)],
        "totals": reconciliation.totals(db),
    }
