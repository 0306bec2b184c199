"""Payment attempts: start one, read it (from the workflow), cancel it, fetch its receipt."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, RPCTimeoutOrCancelledError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from portnet.i18n import N_
from portnet.models import Document
from portnet.statuses import PaymentStatus
from web import idempotency, receipt_wait, status_watch
from web.api.schemas import ErrorOut, PaymentBody, PaymentOut
from web.attempts import (
    UNAVAILABLE,
    PaymentRefused,
    find_payment,
    payer_payment,
    payment_for_user,
    read_view,
    with_reserved_amount,
)
from web.deps import DB, AppSettings, CurrentUser, Temporal
from web.limits import PaymentIdPath
from web.locale import request_language
from web.metrics import ROUTE_VARIANT
from web.payments import request_cancel, start_payment

router = APIRouter(prefix="/api/v1/payments", tags=["payments"])
# A payment that succeeded a while ago with no receipt: seeded history, or a receipt that could not be
# issued (the Web UI shows the failed activity).
NO_RECEIPT = N_("Aucun reçu n'est disponible pour ce paiement : contactez le service finance.")
log = logging.getLogger("portnet.payments")

ERRORS = {code: {"model": ErrorOut} for code in (403, 404, 409, 422, 503)}


# While Temporal does not answer, a start is refused with a delay to retry after, never a 500.
RETRY_AFTER_SECONDS = 5


def unavailable() -> JSONResponse:
    return JSONResponse(
        {"detail": UNAVAILABLE, "code": "unavailable"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


@router.post("", status_code=201, response_model=PaymentOut, responses=ERRORS)  # type: ignore[arg-type]
async def create_payment(
    body: PaymentBody,
    user: CurrentUser,
    db: DB,
    settings: AppSettings,
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=idempotency.HEADER,
            description="Une clé par demande (UUID): la même demande renvoyée avec la même clé donne le même "
            "paiement (200), une autre demande avec la même clé est refusée (422). Clés gardées 24 h.",
        ),
    ] = None,
) -> PaymentOut | JSONResponse:
    key, digest, payment_id = None, "", None
    if idempotency_key is not None:
        try:
            key = idempotency.checked_key(idempotency_key)
            digest = idempotency.request_digest(body.model_dump(mode="json"))
            assert user.id is not None
            begun = await run_in_threadpool(idempotency.begin, user.id, key, digest)
        except idempotency.KeyRefused as bad:
            return JSONResponse({"detail": bad.message, "code": bad.code}, status_code=422)
        if isinstance(begun, idempotency.Replay):
            status = 200 if begun.status_code == 201 else begun.status_code
            return JSONResponse(begun.body, status_code=status, headers={"Idempotent-Replayed": "true"})
        payment_id = begun.payment_id
    client: Client | None = await request.app.state.temporal.get()
    if client is None:
        return unavailable()
    try:
        view = await start_payment(
            client,
            db,
            settings,
            user,
            body.invoice_ids,
            body.channel,
            body.payer,
            body.declaration,
            payment_id=payment_id,
            idempotent=key is not None,
            lang=request_language(request, user),
        )
    except PaymentRefused as refused:
        if refused.status_code == 503:
            return unavailable()
        answer = {"detail": refused.message, "code": refused.code}
        if key is not None and user.id is not None:
            await run_in_threadpool(idempotency.finish, user.id, key, refused.status_code, answer)
        return JSONResponse(answer, status_code=refused.status_code)
    except (RPCError, RPCTimeoutOrCancelledError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
        log.warning("payment start for %s: Temporal did not answer (%s)", user.username, err)
        return unavailable()
    out = PaymentOut.of(view)
    if key is not None and user.id is not None:
        await run_in_threadpool(idempotency.finish, user.id, key, 201, out.model_dump(mode="json"))
    return out


def refusal(refused: PaymentRefused) -> JSONResponse:
    return JSONResponse({"detail": refused.message, "code": refused.code}, status_code=refused.status_code)


WAIT_DESCRIPTION = (
    "Attente longue (long-poll), en secondes : la réponse part dès que l'état du paiement diffère de "
    "`since`, au plus tard après `wait` secondes avec l'état inchangé. Sans `wait`, la réponse est "
    "immédiate. 429 (avec Retry-After) au-delà de "
    f"{status_watch.MAX_WAITERS_PER_USER} attentes simultanées par utilisateur."
)
SINCE_DESCRIPTION = (
    "L'état que le client connaît déjà (`status` de sa dernière réponse). Avec `wait` seulement ; "
    "par défaut, l'état au moment de la requête."
)
WaitQuery = Annotated[int | None, Query(ge=1, le=status_watch.MAX_WAIT_SECONDS, description=WAIT_DESCRIPTION)]
SINCE_WITHOUT_WAIT = N_("ne s'emploie qu'avec le paramètre « wait »")


@router.get(
    "/{payment_id}",
    response_model=PaymentOut,
    responses={404: {"model": ErrorOut}, 429: {"model": ErrorOut}},
)
async def get_payment(
    payment_id: PaymentIdPath,
    user: CurrentUser,
    db: DB,
    request: Request,
    wait: WaitQuery = None,
    since: Annotated[PaymentStatus | None, Query(description=SINCE_DESCRIPTION)] = None,
) -> PaymentOut | Response:
    """The attempt: the ledger's once it is over, the workflow's while it lives; ``wait`` long-polls.

    A waiting request holds neither a database connection nor a thread, and its workflow checks are
    shared with every other waiter of the payment in this process (web/status_watch.py).
    """
    if since is not None and wait is None:  # answered as every other 422 (web/api/validation.py)
        raise RequestValidationError(
            [{"loc": ("query", "since"), "type": "value_error", "msg": SINCE_WITHOUT_WAIT, "input": since}]
        )
    payment = await find_payment(db, user, payment_id)  # the connection is not held meanwhile
    if payment is None:
        raise HTTPException(status_code=404, detail=N_("Paiement introuvable."))
    client = await request.app.state.temporal.get()
    shared = None
    if wait is not None and since is not None:  # others may wait on it already: their loop's view
        shared = status_watch.WATCH.known(payment.id, payment.status, since.value)
    # A view shared by the watch loop was queried without the ledger's amount: added here.
    view = (
        with_reserved_amount(shared, payment)
        if shared
        else await read_view(client, payment, db, polling=True)
    )
    if wait is None:
        return PaymentOut.of(view)
    request.scope[ROUTE_VARIANT] = "/api/v1/payments/{payment_id}?wait"  # its own latency series
    known = since.value if since is not None else view.status
    try:
        seen = await status_watch.unless_gone(
            request, status_watch.WATCH.wait(client, view, known, wait, str(user.id), payment.status)
        )
    except status_watch.ClientGone:
        return Response(status_code=204)  # nobody reads it
    except status_watch.WaitRefused as refused:
        return JSONResponse(
            {"detail": refused.message, "code": refused.code},
            status_code=429,
            headers={"Retry-After": str(status_watch.RETRY_AFTER_SECONDS)},
        )
    if seen is None:  # over, as the ledger said: its full view
        payment = await find_payment(db, user, payment_id)
        if payment is None:
            raise HTTPException(status_code=404, detail=N_("Paiement introuvable."))
        seen = await read_view(client, payment, db)
    return PaymentOut.of(with_reserved_amount(seen, payment))


@router.post(
    "/{payment_id}/cancel",
    status_code=202,
    response_model=None,
    responses={c: {"model": ErrorOut} for c in (403, 404, 409, 503)},
)
async def cancel_payment(
    payment_id: PaymentIdPath, user: CurrentUser, db: DB, client: Temporal
) -> dict[str, str] | JSONResponse:
    """The payer withdraws a live attempt; 409 once it is over or its money accepted."""
    try:
        payment = await run_in_threadpool(payer_payment, db, user, payment_id)
        db.close()  # not held while Temporal answers
        await request_cancel(client, payment, f"Annulé par {user.username}")
    except PaymentRefused as refused:
        return refusal(refused)
    return {"status": "cancel_requested"}


@router.get(
    "/{payment_id}/receipt",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, 404: {"model": ErrorOut}},
)
def receipt(payment_id: PaymentIdPath, user: CurrentUser, db: DB) -> Response:
    payment = payment_for_user(db, user, payment_id)
    if payment is None:
        raise HTTPException(status_code=404, detail=N_("Paiement introuvable."))
    doc = db.exec(
        select(Document).where(Document.payment_id == payment.id, Document.kind == "receipt")
    ).first()
    if doc is None or doc.content is None:
        if payment.status == PaymentStatus.SUCCEEDED.value and receipt_wait.just_paid(payment):
            # Issued just after the settlement (activities/receipts.py): ask again in a moment.
            raise HTTPException(
                status_code=404,
                detail=N_("Reçu en cours d'émission : réessayez dans quelques secondes."),
                headers={"Retry-After": "2"},
            )
        if payment.status == PaymentStatus.SUCCEEDED.value:
            raise HTTPException(status_code=404, detail=NO_RECEIPT)
        raise HTTPException(status_code=404, detail=N_("Reçu disponible une fois le paiement réussi."))
    return Response(
        doc.content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{doc.name}"'},
    )
