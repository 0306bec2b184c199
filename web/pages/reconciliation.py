"""Finance's reconciliation page (French): what each pass found and did, and what is left to finance."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from portnet import reconciliation
from web.deps import DB, AppSettings
from web.pages.finance import FinancePageUser
from web.pages.rendering import render

router = APIRouter(prefix="/finance")


def schedule_url(ui_url: str, namespace: str) -> str:
    """The reconciliation Schedule in the Temporal Web UI (its runs, its next start)."""
    return f"{ui_url.rstrip('/')}/namespaces/{namespace}/schedules/reconciliation"


@router.get("/reconciliation")
def reconciliation_page(request: Request, db: DB, user: FinancePageUser, settings: AppSettings) -> Response:
    show_all = request.query_params.get("tout") == "1"
    return render(
        request,
        "finance/reconciliation.html",
        {
            "runs": reconciliation.last_runs(db),
            "findings": reconciliation.findings(db, open_only=not show_all),
            "totals": reconciliation.totals(db),
            "kinds": reconciliation.KIND_LABELS,
            "outcomes": reconciliation.OUTCOME_LABELS,
            "needs_finance": reconciliation.NEEDS_FINANCE,
            "show_all": show_all,
            "interval": settings.reconciliation_interval_seconds,
            "schedule_url": schedule_url(settings.temporal_ui_url, settings.temporal_namespace),
        },
        settings=settings,
    )
