"""CMI card on the web side: the payer's browser coming back from CMI's hosted page.

The card needs no field of ours (CMI's page asks for it: card numbers never touch our servers) and
no status-page part (the page's "Retourner au paiement CMI" form is any ``redirect_form`` action's).
CMI's browser returns are redirects to the status page, nothing more: the payment result arrives
server-to-server, signed.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response

from portnet.statuses import Channel
from web.attempts import PAYMENT_ID_IN_URL
from web.channels.base import Choice, WebChannel
from web.pages.rendering import redirect

page_routes = APIRouter()


async def _cmi_return(request: Request, payment_id: str) -> Response:
    """CMI's okUrl/failUrl: a cross-site POST that carries neither our session cookie nor a CSRF token.

    Hence no session, no token and no state change here: the code posted is only a hint for the message;
    the status page reads the truth from the workflow.
    """
    if not PAYMENT_ID_IN_URL.match(payment_id):
        raise HTTPException(status_code=404, detail="Paiement introuvable.")
    code = request.query_params.get("ProcReturnCode")
    if request.method == "POST":
        posted = (await request.form()).get("ProcReturnCode")
        code = posted if isinstance(posted, str) else code
    outcome = "ok" if (code or "").strip() == "00" else "echec"
    return redirect(f"/paiements/{quote(payment_id)}?retour={outcome}")


@page_routes.post("/paiements/{payment_id}/retour")
async def cmi_return_post(request: Request, payment_id: str) -> Response:
    return await _cmi_return(request, payment_id)


@page_routes.get("/paiements/{payment_id}/retour")
async def cmi_return_get(request: Request, payment_id: str) -> Response:
    return await _cmi_return(request, payment_id)


class CmiCardWeb(WebChannel):
    name = "cmi_card"
    choices = (Choice(Channel.CMI_CARD, "Carte bancaire", "CMI", 1),)
    pages = page_routes


CHANNEL = CmiCardWeb()
