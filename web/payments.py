"""Starting and cancelling payment attempts, shared by the JSON API and the portal.

The web layer writes no payment state: it checks what it can cheaply (ownership, status, allowed
channel, the channel's own fields through its web part in web/channels/) to give a clear answer,
then starts the workflow and waits on its ``ready`` Update in the same round trip
(update-with-start). The workflow's reservation stays the arbiter of races. Reading an attempt is
web/attempts.py's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowQueryFailedError
from temporalio.common import TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from portnet.i18n import N_, gettext
from portnet.models import Company, Payment, User
from portnet.money import api_amount, total
from portnet.queries import invoices_for_user
from portnet.settings import Settings
from portnet.statuses import ENABLED_CHANNELS, PAYABLE_STATUSES, Channel, InvoiceStatus, PaymentStatus, Role
from web.attempts import UNAVAILABLE, PaymentRefused, forget_view, new_payment_id, read_view, workflow_id_of
from web.channels import web_channel
from web.channels.base import ChannelRefused
from web.deps import company_scope
from workflows import details
from workflows.attempt import search_attributes
from workflows.payment import PaymentWorkflow
from workflows.types import PayerInfo, PaymentInput, PaymentView

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_INVOICES = 50
T = TypeVar("T")


def _payer(user: User, company: Company, payer: dict[str, str] | None) -> PayerInfo:
    payer = payer or {}
    email = (payer.get("email") or user.email or company.email or "").strip()
    if not EMAIL.match(email):
        raise PaymentRefused(422, N_("Adresse e-mail du payeur invalide."), "invalid_payer")
    name = (payer.get("name") or user.full_name or company.name).strip()[:120]
    phone = (payer.get("phone") or "").strip() or None
    if phone and not re.fullmatch(r"\+?[0-9 .-]{8,20}", phone):
        raise PaymentRefused(422, N_("Numéro de téléphone invalide."), "invalid_payer")
    return PayerInfo(name=name, email=email, phone=phone)


@dataclass
class _Start:
    """What the ledger said about a start: the attempt to join, or the workflow to start."""

    joined: Payment | None = None
    inp: PaymentInput | None = None
    attributes: TypedSearchAttributes | None = None
    summary: str | None = None  # the Web UI's static summary and details of the attempt
    details: str | None = None
    payment_id: str = ""


async def start_payment(
    client: Client,
    db: Session,
    settings: Settings,
    user: User,
    invoice_ids: list[int],
    channel: str,
    payer: dict[str, str] | None,
    declaration: dict[str, str] | None = None,
    payment_id: str | None = None,
    idempotent: bool = False,
    lang: str = "fr",
) -> PaymentView:
    """Starts the attempt and answers once the payer has something to do.

    ``idempotent``: ``payment_id`` was kept under the client's Idempotency-Key before this call, and
    an earlier call with it may have reached Temporal (its answer lost in an outage): join that
    attempt, whether it is still running or already over, instead of refusing a second start.

    The ledger's checks run in a worker thread and give the connection back before Temporal is
    awaited: the event loop never waits on the database, and a request never holds the pool while
    Temporal answers.
    """
    start = await run_in_threadpool(
        _then_closed,
        db,
        _start_of,
        settings,
        user,
        invoice_ids,
        channel,
        payer,
        declaration,
        payment_id,
        idempotent,
        lang,
    )
    if start.joined is not None:
        # The first call's attempt exists (its invoices are held by it): answer with it.
        return _refused_or(await read_view(client, start.joined, db))
    assert start.inp is not None
    operation = WithStartWorkflowOperation(  # on the event loop: it holds a future of it
        PaymentWorkflow.run,
        start.inp,
        id=workflow_id_of(start.payment_id),
        task_queue=settings.temporal_task_queue,
        # An idempotent retry joins the attempt its first call started; any other start is new.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING
        if idempotent
        else WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=start.attributes,
        static_summary=start.summary,
        static_details=start.details,
    )
    try:
        view = await client.execute_update_with_start_workflow(
            PaymentWorkflow.ready, start_workflow_operation=operation
        )
    except WorkflowAlreadyStartedError:
        if not idempotent:
            raise PaymentRefused(409, N_("Cette commande a déjà été lancée."), "conflict") from None
        # The first call's attempt is already over: the ledger tells how it ended.
        ended = await run_in_threadpool(_then_closed, db, Session.get, Payment, start.payment_id)
        if ended is None:
            raise PaymentRefused(503, UNAVAILABLE, "unavailable") from None
        view = await read_view(client, ended, db)
    return _refused_or(view)


def _then_closed(db: Session, work: Callable[..., T], *args: Any) -> T:
    """``work(db, *args)`` in a worker thread's call, the session closed after it."""
    try:
        return work(db, *args)
    finally:
        db.close()


def _start_of(
    db: Session,
    settings: Settings,
    user: User,
    invoice_ids: list[int],
    channel: str,
    payer: dict[str, str] | None,
    declaration: dict[str, str] | None,
    payment_id: str | None,
    idempotent: bool,
    lang: str = "fr",
) -> _Start:
    if user.role != Role.CLIENT.value or user.company_id is None:
        raise PaymentRefused(403, N_("Seul un client peut régler ses factures."), "forbidden")
    if idempotent and payment_id is not None:
        started = db.get(Payment, payment_id)
        if started is not None and started.company_id == user.company_id:
            return _Start(joined=started, payment_id=payment_id)
    try:
        chan = Channel(channel)
    except ValueError:
        raise PaymentRefused(
            422, gettext("Canal de paiement inconnu: %(channel)s.") % {"channel": channel}, "invalid_channel"
        ) from None
    if chan not in ENABLED_CHANNELS:
        raise PaymentRefused(
            422,
            gettext("Le canal %(channel)s n'est pas encore disponible.") % {"channel": gettext(chan.label)},
            "channel_unavailable",
        )
    ids = list(dict.fromkeys(invoice_ids))
    if not ids:
        raise PaymentRefused(422, N_("Sélectionnez au moins une facture."), "no_invoice")
    if len(ids) > MAX_INVOICES:
        raise PaymentRefused(
            422,
            gettext("Au plus %(count)s factures par règlement.") % {"count": MAX_INVOICES},
            "too_many_invoices",
        )
    rows = invoices_for_user(db, ids, company_scope(user))
    if len(rows) != len(ids):
        raise PaymentRefused(404, N_("Facture introuvable."), "not_found")
    not_payable = [inv for inv, _, _ in rows if inv.status not in PAYABLE_STATUSES]
    if not_payable:
        listed = ", ".join(
            f"{inv.number} ({gettext(InvoiceStatus(inv.status).label)})" for inv in not_payable
        )
        raise PaymentRefused(
            409, gettext("Facture(s) non réglable(s): %(invoices)s.") % {"invoices": listed}, "conflict"
        )
    refused = [inv.number for inv, _, _ in rows if chan.method.value not in inv.methods]
    if refused:
        raise PaymentRefused(
            422,
            gettext("%(channel)s n'est pas autorisé pour la/les facture(s) %(invoices)s.")
            % {"channel": gettext(chan.label), "invoices": ", ".join(refused)},
            "method_not_allowed",
        )
    company = rows[0][2]
    web = web_channel(chan.value)
    if web is None:
        raise PaymentRefused(
            422,
            gettext("Le canal %(channel)s n'est pas encore disponible.") % {"channel": gettext(chan.label)},
            "channel_unavailable",
        )
    try:
        checkout = web.checkout(chan, payer or {}, declaration, settings, date.today())
    except ChannelRefused as bad:
        raise PaymentRefused(bad.status_code, bad.message, bad.code) from None
    if checkout.payer_name:
        payer = {**(payer or {}), "name": checkout.payer_name, "phone": checkout.payer_phone or ""}
    payer_info = _payer(user, company, payer)
    if payment_id is None or not re.fullmatch(r"PN[0-9A-F]{12}", payment_id):
        payment_id = new_payment_id()
    elif not idempotent and db.get(Payment, payment_id) is not None:
        # The order number shown on the Amanpay screen was already used (a second submit).
        raise PaymentRefused(409, N_("Cette commande a déjà été lancée."), "conflict")
    amount = total(inv.amount_ttc for inv, _, _ in rows)
    inp = PaymentInput(
        payment_id=payment_id,
        channel=chan.value,
        company_id=user.company_id,
        user_id=user.id,
        user_name=user.username,
        invoice_ids=ids,
        payer=payer_info,
        payment_deadline_seconds=web.deadline_seconds(settings),
        emitter_ack_deadline_seconds=settings.emitter_ack_deadline_seconds,
        reminder_before_seconds=settings.fatourati_reminder_before_seconds,
        declaration=checkout.declaration,
        finance_alert_email=settings.finance_alert_email,
        amanpay=checkout.amanpay,
        amanpay_settings=checkout.amanpay_settings,
        lang=lang,  # the payer's language, for partner pages that take one (CMI's `lang`)
    )
    attributes = search_attributes(
        inp,
        company.customs_code,
        [em.code for _, em, _ in rows],
        [inv.number for inv, _, _ in rows],
        api_amount(amount),
    )
    summary = details.payment_summary(
        chan.value, amount, company.name, company.customs_code, [inv.number for inv, _, _ in rows]
    )
    shown = details.payment_details(
        payment_id,
        chan.value,
        amount,
        company.name,
        company.customs_code,
        [(inv.number, em.code, inv.amount_ttc) for inv, em, _ in rows],
    )
    return _Start(inp=inp, attributes=attributes, summary=summary, details=shown, payment_id=payment_id)


def _refused_or(view: PaymentView) -> PaymentView:
    """A start the workflow refused (invoice held, not found...) is the API's 409/404/422."""
    if view.status == PaymentStatus.FAILED.value and view.error_code:
        status = {"conflict": 409, "not_found": 404}.get(view.error_code, 422)
        raise PaymentRefused(status, view.error or N_("Paiement refusé."), view.error_code)
    return view


def is_cancellable(view: PaymentView) -> bool:
    """Whether the workflow still honours a cancel: before money was accepted.

    A declared cheque or transfer waits for finance in ``awaiting_confirmation`` and may still be
    withdrawn; for the other channels that status means the partner's approval was accepted.
    """
    if view.status in (PaymentStatus.STARTED.value, PaymentStatus.AWAITING_PAYER.value):
        return True
    web = web_channel(view.channel)
    return (
        view.status == PaymentStatus.AWAITING_CONFIRMATION.value and web is not None and web.waits_for_finance
    )


def attempt_over_message(status: str) -> str:
    if status in (PaymentStatus.AWAITING_CONFIRMATION.value, PaymentStatus.SUCCEEDED.value):
        return N_("Le paiement a été accepté : la tentative ne peut plus être annulée.")
    if status in {s.value for s in PaymentStatus if s.is_final}:
        label = PaymentStatus(status).label
        return gettext(
            "Cette tentative de paiement est terminée (%(status)s) : elle ne peut plus être annulée."
        ) % {"status": gettext(label)}
    return N_("Cette tentative de paiement est terminée : elle ne peut plus être annulée.")


async def request_cancel(client: Client, payment: Payment, reason: str) -> PaymentView | None:
    """Signals ``cancel`` to a live attempt; returns the state it had, or raises ``PaymentRefused``.

    409 when the attempt is over (or its money accepted): a signal to a closed workflow is an
    RPCError NOT_FOUND, which must not surface as a 500. 503 when Temporal does not answer.
    """
    handle = client.get_workflow_handle(payment.workflow_id)
    try:
        view = await handle.query(PaymentWorkflow.state)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise PaymentRefused(409, attempt_over_message(payment.status), "attempt_over") from None
        raise PaymentRefused(503, UNAVAILABLE, "unavailable") from None
    except WorkflowQueryFailedError:
        raise PaymentRefused(503, UNAVAILABLE, "unavailable") from None
    if view is not None and not is_cancellable(view):
        raise PaymentRefused(409, attempt_over_message(view.status), "attempt_over")
    try:
        await handle.signal(PaymentWorkflow.cancel, reason)
        forget_view(payment.id)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # it ended between the query and the signal
            raise PaymentRefused(409, attempt_over_message(payment.status), "attempt_over") from None
        raise PaymentRefused(503, UNAVAILABLE, "unavailable") from None
    return view
