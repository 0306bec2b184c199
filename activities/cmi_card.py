"""CMI card adapter: the hosted-page form the payer's browser is sent to.

Building the form is pure computation with a secret (the store key), so it is an activity (the key
must stay out of workflow code) and a local one (no server round trip for a few microseconds of work).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from temporalio import activity

from activities.types import NextAction, PayerInfo
from portnet.protocols import cmi as cmi_protocol
from portnet.settings import get_settings


@dataclass
class CmiFormInput:
    payment_id: str
    amount: str
    payer: PayerInfo
    client_name: str
    lang: str = "fr"


def payment_urls(base_url: str, payment_id: str) -> dict[str, str]:
    base = base_url.rstrip("/")
    return {
        "ok_url": f"{base}/paiements/{payment_id}/retour",
        "fail_url": f"{base}/paiements/{payment_id}/retour",
        "shop_url": f"{base}/paiements/{payment_id}/annuler",
        "callback_url": f"{base}/api/v1/callbacks/cmi",
    }


@activity.defn
def build_card_form(inp: CmiFormInput) -> NextAction:
    settings = get_settings()
    fields = cmi_protocol.build_payment_fields(
        client_id=settings.cmi_client_id,
        store_key=settings.cmi_store_key,
        oid=inp.payment_id,
        amount=inp.amount,
        rnd=secrets.token_hex(10),
        email=inp.payer.email,
        bill_to_name=inp.payer.name,
        bill_to_company=inp.client_name,
        tel=inp.payer.phone,
        lang=inp.lang,
        session_timeout=settings.cmi_session_timeout_seconds,
        **payment_urls(settings.public_base_url, inp.payment_id),
    )
    return NextAction(type="redirect_form", url=settings.cmi_gateway_url, fields=fields)


ACTIVITIES: list[Callable[..., Any]] = [build_card_form]
