"""What the payment status page shows for the issue-4 channels (Fatourati, cheque, transfer)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session
from starlette.datastructures import FormData

from portnet.models import Payment, PaymentChannelData
from portnet.settings import Settings
from portnet.statuses import Channel, PaymentStatus
from web.fatourati_guide import CHANNELS, GENERAL
from workflows.types import PaymentView

DECLARATION_LABELS = {
    "cheque_number": "Numéro du chèque",
    "bank": "Banque",
    "transfer_reference": "Référence du virement",
    "transfer_date": "Date du virement",
}
OFFLINE = {Channel.CHEQUE.value, Channel.BANK_TRANSFER.value}


def remaining_text(expires_at: str | None, now: datetime | None = None) -> str:
    if not expires_at:
        return ""
    deadline = datetime.fromisoformat(expires_at)
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)
    left = int((deadline - (now or datetime.now(UTC))).total_seconds())
    if left <= 0:
        return "délai écoulé"
    return f"{left // 3600} h {left % 3600 // 60:02d} min {left % 60:02d} s"


def sandbox_pages(settings: Settings) -> str:
    """Where a developer pays at the partner's sandbox (``SANDBOX_BASE_URL``), when SANDBOX_ENABLED
    lets the portal link to them; empty otherwise (production never links to them)."""
    if not settings.sandbox_enabled or settings.is_production:
        return ""
    return settings.sandbox_base_url.rstrip("/") + "/sandbox"


def channel_context(db: Session, settings: Settings, payment: Payment, view: PaymentView) -> dict[str, Any]:
    sandbox = sandbox_pages(settings)
    ctx: dict[str, Any] = {"fatourati": False, "offline": False, "sandbox_pages": sandbox}
    action = view.next_action
    if (
        action is not None
        and action.type == "fatourati_reference"
        and action.fields
        and view.status == PaymentStatus.AWAITING_PAYER.value
    ):
        ctx.update(
            fatourati=True,
            guide=CHANNELS,
            general=GENERAL.format(reference=action.fields.get("reference", "")),
            remaining=remaining_text(action.fields.get("expires_at")),
            sandbox_url=f"{sandbox}/fatourati" if sandbox else "",
        )
    if payment.channel in OFFLINE:
        data = db.get(PaymentChannelData, payment.id)
        declared = json.loads(data.declaration) if data is not None and data.declaration else {}
        ctx.update(
            offline=True,
            declaration=[(DECLARATION_LABELS.get(k, k), v) for k, v in declared.items()],
        )
    return ctx


def declaration_of(form: FormData) -> dict[str, str]:
    """The cheque / transfer fields of the confirmation form (checked by web.channel_inputs)."""
    out: dict[str, str] = {}
    for name in DECLARATION_LABELS:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            out[name] = value.strip()[:80]
    return out
