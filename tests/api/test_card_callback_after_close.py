"""A CMI callback replayed after its attempt closed is answered from the ledger.

CMI calls again when our answer did not reach it within its 10 s. If the attempt has closed
meanwhile, the workflow cannot answer (Temporal says NOT_FOUND): the ledger does. The transaction the
attempt settled on gets ``ACTION=POSTAUTH`` again (CMI captures it); anything else ``APPROVED``.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select
from temporalio.service import RPCError, RPCStatusCode

from portnet.models import PartnerCallback, Payment
from tests.support.cmi_callbacks import card_callback
from tests.support.partners import Ledger, Portal


class ClosedWorkflows:
    """Temporal once the attempt's run has closed: every Update is NOT_FOUND."""

    async def get(self) -> ClosedWorkflows:
        return self

    def get_workflow_handle(self, workflow_id: str) -> Any:
        class Handle:
            async def execute_update(self, update: Any, arg: Any) -> Any:
                raise RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")

        return Handle()




def closed_as(db: Session, ledger: Ledger, status: str, trans_id: str | None) -> None:
    payment = db.get(Payment, ledger.payment_id)
    assert payment is not None
    payment.status, payment.partner_transaction_id = status, trans_id
    db.add(payment)
    db.commit()


def post(client: Portal, body: bytes) -> str:
    client.app.state.temporal = ClosedWorkflows()
    answer = client.post("/api/v1/callbacks/cmi", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 200
    return answer.text


def test_replay_of_the_settled_transaction_is_captured_again(
    client: Portal, db: Session, ledger: Ledger
) -> None:
    closed_as(db, ledger, "succeeded", "26331SETTLED01")
    assert post(client, card_callback(ledger.payment_id, "26331SETTLED01")) == "ACTION=POSTAUTH"
    row = db.exec(select(PartnerCallback).where(PartnerCallback.payment_id == ledger.payment_id)).first()
    assert row is not None and row.verdict == "accepted" and row.answer == "ACTION=POSTAUTH"


def test_other_callbacks_after_close_are_not_captured(client: Portal, db: Session, ledger: Ledger) -> None:
    closed_as(db, ledger, "succeeded", "26331SETTLED02")
    # Another transaction on the same order, and a decline: acknowledged, never captured.
    assert post(client, card_callback(ledger.payment_id, "26331OTHER0002")) == "APPROVED"
    assert post(client, card_callback(ledger.payment_id, "26331SETTLED02", approved=False)) == "APPROVED"


def test_replay_after_an_attempt_that_ended_without_money_is_not_captured(
    client: Portal, db: Session, ledger: Ledger
) -> None:
    closed_as(db, ledger, "expired", None)
    assert post(client, card_callback(ledger.payment_id, "26331LATE00003")) == "APPROVED"
    closed_as(db, ledger, "failed", None)  # CMI held no authorisation: the attempt did not settle
    assert post(client, card_callback(ledger.payment_id, "26331LATE00004")) == "APPROVED"
