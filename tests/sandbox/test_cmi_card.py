"""The CMI sandbox end to end: its HASH ver3 (the bank's own code, against partners.md and ours), form,
card page, 3-D Secure, callbacks and their retries, status query, pages."""

from __future__ import annotations

import base64
import hashlib
import random
import re
import string
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from typing import Any

import httpx

from portnet.protocols import cmi as cmi_protocol
from portnet.protocols import cmi_api
from portnet.settings import Settings
from sandbox.cmi_card import signature
from sandbox.context import Sandbox
from tests.support.sandbox import RECEIVER, Receiver, assert_french_page, open_session, payment_form

VISA = "4000000000000010"
MASTERCARD = "5453010000066100"
MASTERCARD_3DS = "5191630100004896"
FUTURE = f"12/{(datetime.now().year + 3) % 100:02d}"
PAST = f"01/{(datetime.now().year - 1) % 100:02d}"


async def pay(
    client: httpx.AsyncClient, oid: str, pan: str = VISA, expiry: str = FUTURE, cvv: str = "000", **extra: Any
) -> httpx.Response:
    payment = {"oid": oid, "pan": pan, "expiry": expiry, "cvv": cvv, **extra}
    return await client.post("/cmi/card-payments", json=payment)


async def order(client: httpx.AsyncClient, oid: str) -> dict[str, Any]:
    """What the bank knows of the order, from its own API."""
    reply = await client.get(f"/cmi/orders/{oid}")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def parse_xml(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 - our own sandbox's answer


def hidden_fields(html: str) -> dict[str, str]:
    import html as html_lib

    return {
        html_lib.unescape(name): html_lib.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', html)
    }


# --- the payment form -------------------------------------------------------------------------


async def test_form_signed_by_our_side_opens_the_card_page(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    reply = await client.post("/cmi/fim/est3Dgate", data=payment_form(settings))
    assert reply.status_code == 200
    page = reply.text
    assert "3\u202f600,00 MAD" in page
    assert "PN-2026-000123" in page
    assert "Payer" in page and "Annuler" in page
    assert 'action="/sandbox/cmi/fim/pay"' in page
    assert 'name="pan"' in page and 'name="expiry"' in page and 'name="cvv"' in page


async def test_wrong_or_missing_hash_is_refused_without_session(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    form = payment_form(settings)
    wrong = await client.post("/cmi/fim/est3Dgate", data={**form, "HASH": form["HASH"][:-4] + "AAA="})
    assert wrong.status_code == 400
    assert "HASH est invalide" in wrong.text
    missing = await client.post("/cmi/fim/est3Dgate", data={k: v for k, v in form.items() if k != "HASH"})
    assert missing.status_code == 400
    assert "HASH est manquant" in missing.text
    other_key = payment_form(Settings(cmi_store_key="another"))
    assert (await client.post("/cmi/fim/est3Dgate", data=other_key)).status_code == 400
    assert (await client.get(f"/cmi/orders/{form['oid']}")).status_code == 404


async def test_tampered_field_is_refused(client: httpx.AsyncClient, settings: Settings) -> None:
    form = payment_form(settings)
    for name, value in [("amount", "1.00"), ("CallbackURL", "http://evil.test/cb"), ("BillToStreet2", "x")]:
        reply = await client.post("/cmi/fim/est3Dgate", data={**form, name: value})
        assert reply.status_code == 400, name
    # Only encoding escapes the signature, as partners.md says.
    assert (
        await client.post("/cmi/fim/est3Dgate", data={**form, "encoding": "ISO-8859-1"})
    ).status_code == 200


async def test_signed_but_invalid_fields_are_refused(client: httpx.AsyncClient, settings: Settings) -> None:
    cases = {
        "currency": "840",
        "clientid": "999",
        "storetype": "3D",
        "hashAlgorithm": "ver2",
        "amount": "12.5",
        "okUrl": "javascript:alert(1)",
        "sessionTimeout": "5",
    }
    for name, value in cases.items():
        form = payment_form(settings, **{name: value})
        reply = await client.post("/cmi/fim/est3Dgate", data=form)
        assert reply.status_code == 400, name
        assert "HASH" not in reply.text.split("<ul>")[1], name  # the hash itself was fine
    form = payment_form(settings)
    del form["CallbackURL"]
    form["HASH"] = cmi_protocol.compute_hash(form, settings.cmi_store_key)
    reply = await client.post("/cmi/fim/est3Dgate", data=form)
    assert reply.status_code == 400 and "CallbackURL" in reply.text


async def test_natural_order_and_escaping_agree_with_our_side(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    form = payment_form(
        settings,
        BillToStreet2="Rue 2 | bloc A",
        BillToStreet12="C:\\entrepot\\12",
        BillToStreet1="  espaces autour  ",
        BillToName="Société A|B \\ C",
    )
    reply = await client.post("/cmi/fim/est3Dgate", data=form)
    assert reply.status_code == 200, reply.text


# --- paying on the card page ------------------------------------------------------------------


async def test_approved_card_page_flow_calls_back_and_posts_to_ok_url(
    client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    oid = await open_session(client, settings)
    reply = await client.post(
        "/cmi/fim/pay", data={"oid": oid, "pan": "4000 0000 0000 0010", "expiry": FUTURE, "cvv": "000"}
    )
    assert reply.status_code == 200
    assert "Paiement accepté" in reply.text
    assert f'action="{RECEIVER}/cmi/ok"' in reply.text
    assert "submit()" in reply.text

    [callback] = receiver.callbacks
    assert cmi_protocol.verify_hash(callback, settings.cmi_store_key)
    assert cmi_protocol.is_approved(callback)
    sent = payment_form(settings)
    for name, value in sent.items():
        if name != "HASH":
            assert callback[name] == value, name
    assert re.fullmatch(r"\w{6}", callback["AuthCode"])
    assert callback["MaskedPan"] == "400000***0010"
    assert callback["mdStatus"] == "1"
    assert callback["ErrMsg"] == ""
    assert re.fullmatch(r"\d{8} \d{2}:\d{2}:\d{2}", callback["EXTRA.TRXDATE"])
    assert callback["TransId"] and callback["HostRefNum"]

    # The browser carries the same signed fields to okUrl.
    assert hidden_fields(reply.text) == callback
    attempt = (await order(client, oid))["attempts"][0]
    assert attempt["callback_answer"] == "ACTION=POSTAUTH"
    assert attempt["captured"] and attempt["callback_state"] == "delivered"


async def test_declined_card_page_flow_posts_to_fail_url(
    client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    receiver.callback_answers = [(200, "APPROVED")]
    oid = await open_session(client, settings)
    reply = await client.post(
        "/cmi/fim/pay", data={"oid": oid, "pan": "4111111111111111", "expiry": FUTURE, "cvv": "123"}
    )
    assert "Paiement refusé" in reply.text
    assert f'action="{RECEIVER}/cmi/fail"' in reply.text
    [callback] = receiver.callbacks
    assert callback["ProcReturnCode"] == "05" and callback["Response"] == "Declined"
    assert callback["ErrMsg"] == "Transaction refusée"
    assert callback["AuthCode"] == ""
    assert cmi_protocol.verify_hash(callback, settings.cmi_store_key)


async def test_card_page_refuses_unreadable_input_without_attempt(
    client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    oid = await open_session(client, settings)
    reply = await client.post("/cmi/fim/pay", data={"oid": oid, "pan": "abc", "expiry": "13/99", "cvv": "0"})
    assert reply.status_code == 400
    assert "Numéro de carte invalide" in reply.text
    assert receiver.callbacks == [] and (await order(client, oid))["attempts"] == []


async def test_three_d_secure_page_flow(
    client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    oid = await open_session(client, settings)
    page = await client.post(
        "/cmi/fim/pay", data={"oid": oid, "pan": MASTERCARD_3DS, "expiry": FUTURE, "cvv": "000"}
    )
    assert "Authentification 3-D Secure" in page.text
    assert receiver.callbacks == []
    wrong = await client.post("/cmi/fim/3ds", data={"oid": oid, "code": "999"})
    assert "Paiement refusé" in wrong.text
    assert receiver.callbacks[-1]["mdStatus"] == "0"
    assert receiver.callbacks[-1]["Response"] == "Declined"

    await client.post(
        "/cmi/fim/pay", data={"oid": oid, "pan": MASTERCARD_3DS, "expiry": FUTURE, "cvv": "000"}
    )
    right = await client.post("/cmi/fim/3ds", data={"oid": oid, "code": "123"})
    assert "Paiement accepté" in right.text
    callback = receiver.callbacks[-1]
    assert callback["mdStatus"] == "1" and callback["ProcReturnCode"] == "00"
    assert callback["MaskedPan"] == "519163***4896"
    assert cmi_protocol.verify_hash(callback, settings.cmi_store_key)


async def test_cancel_sends_the_browser_to_shopurl(client: httpx.AsyncClient, settings: Settings) -> None:
    oid = await open_session(client, settings)
    reply = await client.get("/cmi/fim/cancel", params={"oid": oid})
    assert reply.status_code == 303
    assert reply.headers["location"] == f"{RECEIVER}/cmi/cancel"
    assert (await order(client, oid))["cancelled"]


# --- scripted payments ------------------------------------------------------------------------


async def test_scripted_approval(client: httpx.AsyncClient, settings: Settings, receiver: Receiver) -> None:
    oid = await open_session(client, settings)
    reply = await pay(client, oid, MASTERCARD)
    assert reply.status_code == 200
    body = reply.json()
    assert body["result"] == "approved" and body["proc_return_code"] == "00"
    assert body["callback_answer"] == "ACTION=POSTAUTH"
    assert body["redirect"]["url"] == f"{RECEIVER}/cmi/ok"
    assert body["redirect"]["fields"] == receiver.callbacks[0]
    assert body["trans_id"] == receiver.callbacks[0]["TransId"]


async def test_scripted_declines(client: httpx.AsyncClient, settings: Settings, receiver: Receiver) -> None:
    oid = await open_session(client, settings)
    cases = [
        ({"pan": "4242424242424242"}, "05", "Transaction refusée"),
        ({"pan": "1234567890123"}, "05", "Transaction refusée"),
        ({"expiry": PAST}, "54", "Carte expirée"),
        ({"cvv": "123"}, "82", None),
        ({"pan": MASTERCARD_3DS, "three_ds_code": "000"}, "05", None),
    ]
    for overrides, code, message in cases:
        body = (await pay(client, oid, **overrides)).json()
        assert body["result"] == "declined", overrides
        assert body["proc_return_code"] == code, overrides
        assert body["redirect"]["url"] == f"{RECEIVER}/cmi/fail"
        if message:
            assert body["err_msg"] == message
    assert receiver.callbacks[-1]["mdStatus"] == "0"
    # Several declined attempts on one order, each with its own TransId, then an approval.
    approved = (await pay(client, oid, MASTERCARD_3DS, three_ds_code="123")).json()
    assert approved["result"] == "approved" and approved["md_status"] == "1"
    trans_ids = [c["TransId"] for c in receiver.callbacks]
    assert len(trans_ids) == len(cases) + 1 == len(set(trans_ids))
    assert all(cmi_protocol.verify_hash(c, settings.cmi_store_key) for c in receiver.callbacks)


async def test_paid_order_refuses_a_second_payment(
    client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    oid = await open_session(client, settings)
    assert (await pay(client, oid)).json()["result"] == "approved"
    again = await pay(client, oid)
    assert again.status_code == 409
    page = await client.post("/cmi/fim/pay", data={"oid": oid, "pan": VISA, "expiry": FUTURE, "cvv": "000"})
    assert page.status_code == 409 and "Commande déjà payée" in page.text
    form = await client.post("/cmi/fim/est3Dgate", data=payment_form(settings))
    assert form.status_code == 409 and "Commande déjà payée" in form.text
    assert len(receiver.callbacks) == 1


async def test_expired_session(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    oid = await open_session(client, settings, session_timeout=60)
    later = handle.clock() + timedelta(seconds=61)
    handle.clock = lambda: later
    page = await client.post("/cmi/fim/pay", data={"oid": oid, "pan": VISA, "expiry": FUTURE, "cvv": "000"})
    assert page.status_code == 410 and "Session expirée" in page.text
    assert (await pay(client, oid)).status_code == 410
    assert receiver.callbacks == []


async def test_unknown_order(client: httpx.AsyncClient) -> None:
    assert (await pay(client, "nope")).status_code == 404
    page = await client.post(
        "/cmi/fim/pay", data={"oid": "nope", "pan": VISA, "expiry": FUTURE, "cvv": "000"}
    )
    assert page.status_code == 404


# --- callback retries -------------------------------------------------------------------------


async def test_failure_answer_is_retried_until_acknowledged(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    receiver.callback_answers = [(200, "FAILURE"), (503, "down"), (200, "ACTION=POSTAUTH")]
    oid = await open_session(client, settings)
    body = (await pay(client, oid)).json()
    assert body["callback_answer"] == "FAILURE"
    assert body["callback_state"] == "retrying"
    await handle.background.wait_idle()
    assert len(receiver.callbacks) == 3
    assert len({c["TransId"] for c in receiver.callbacks}) == 1  # same transaction, sent again
    attempt = (await order(client, oid))["attempts"][0]
    assert [t["answer"] for t in attempt["callback_tries"]] == ["FAILURE", "down", "ACTION=POSTAUTH"]
    assert attempt["callback_state"] == "delivered" and attempt["captured"]


async def test_retries_give_up_after_the_configured_tries(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    receiver.callback_answers = [(500, "boom")]
    handle.tuning.cmi_callback_max_tries = 4
    oid = await open_session(client, settings)
    body = (await pay(client, oid, wait_for_retries=True)).json()
    assert body["callback_state"] == "failed"
    assert len(receiver.callbacks) == 4


async def test_unreachable_merchant_is_retried(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    handle.outbound.transport = httpx.MockTransport(refuse)
    oid = await open_session(client, settings)
    body = (await pay(client, oid)).json()
    assert body["result"] == "approved" and body["callback_answer"] is None
    await handle.background.wait_idle()
    attempt = (await order(client, oid))["attempts"][0]
    assert attempt["callback_state"] == "failed"
    assert len(attempt["callback_tries"]) == 3
    assert all("ConnectError" in (t["error"] or "") for t in attempt["callback_tries"])


async def test_acknowledged_but_not_captured(
    client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    receiver.callback_answers = [(200, "APPROVED")]
    oid = await open_session(client, settings)
    await pay(client, oid)
    attempt = (await order(client, oid))["attempts"][0]
    assert attempt["callback_state"] == "delivered" and not attempt["captured"]
    assert len(receiver.callbacks) == 1


# --- status query -----------------------------------------------------------------------------


def status_request(
    settings: Settings, order_id: str, client_id: str | None = None, password: str | None = None
) -> str:
    return (
        f"<CC5Request><Name>{settings.cmi_api_name}</Name>"
        f"<Password>{settings.cmi_api_password if password is None else password}</Password>"
        f"<ClientId>{client_id or settings.cmi_client_id}</ClientId><OrderId>{order_id}</OrderId>"
        "<Extra><ORDERHISTORY>QUERY</ORDERHISTORY></Extra></CC5Request>"
    )


def post_auth_request(settings: Settings, order_id: str, password: str | None = None, total: str = "") -> str:
    return (
        f"<CC5Request><Name>{settings.cmi_api_name}</Name>"
        f"<Password>{settings.cmi_api_password if password is None else password}</Password>"
        f"<ClientId>{settings.cmi_client_id}</ClientId><OrderId>{order_id}</OrderId>"
        f"<Type>PostAuth</Type>{f'<Total>{total}</Total>' if total else ''}</CC5Request>"
    )


async def test_status_query(client: httpx.AsyncClient, settings: Settings) -> None:
    oid = await open_session(client, settings)
    await pay(client, oid, pan="4242424242424242")
    approved = (await pay(client, oid)).json()
    reply = await client.post("/cmi/fim/api", content=status_request(settings, oid))
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/xml")
    root = parse_xml(reply.text)
    assert root.findtext("OrderId") == oid
    assert root.findtext("Response") == "Approved"
    assert root.findtext("ProcReturnCode") == "00"
    assert root.findtext("TransId") == approved["trans_id"]
    assert root.findtext("Extra/TRXCOUNT") == "2"
    assert root.findtext("Extra/TRANS_STAT") == "C"
    assert (root.findtext("Extra/TRX1") or "").split("\t")[1] == "Declined"


async def test_status_query_errors(client: httpx.AsyncClient, settings: Settings) -> None:
    unknown = parse_xml((await client.post("/cmi/fim/api", content=status_request(settings, "none"))).text)
    assert unknown.findtext("Response") == "Error"
    assert unknown.findtext("ErrMsg")
    wrong_client = await client.post("/cmi/fim/api", content=status_request(settings, "x", client_id="1"))
    assert parse_xml(wrong_client.text).findtext("Response") == "Error"
    no_password = status_request(settings, "x", password="")
    assert (
        parse_xml((await client.post("/cmi/fim/api", content=no_password)).text).findtext("Response")
        == "Error"
    )
    dtd = '<!DOCTYPE x [<!ENTITY a "b">]>' + status_request(settings, "&a;")
    assert (await client.post("/cmi/fim/api", content=dtd)).status_code == 400
    assert (await client.post("/cmi/fim/api", content="not xml")).status_code == 400


async def test_status_query_for_order_without_attempt(client: httpx.AsyncClient, settings: Settings) -> None:
    oid = await open_session(client, settings)
    root = parse_xml((await client.post("/cmi/fim/api", content=status_request(settings, oid))).text)
    assert root.findtext("Response") == "Error"
    assert root.findtext("Extra/TRXCOUNT") == "0"


async def test_status_query_refuses_a_wrong_api_password(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    oid = await open_session(client, settings)
    await pay(client, oid)
    root = parse_xml(
        (await client.post("/cmi/fim/api", content=status_request(settings, oid, password="x"))).text
    )
    assert root.findtext("Response") == "Error" and root.findtext("OrderId") == ""
    assert root.find("Extra/TRXCOUNT") is None  # no history given away


# --- our callback answer lost, and the capture through the XML API (PostAuth) ------------------


async def test_lost_answer_leaves_an_authorisation_that_postauth_captures_once(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    oid = await open_session(client, settings)
    paid = (await pay(client, oid, answers_lost=True)).json()
    assert paid["result"] == "approved" and not paid["captured"]
    await handle.background.wait_idle()
    attempt = (await order(client, oid))["attempts"][0]
    # The merchant answered POSTAUTH each time, too late: the bank never read it.
    assert len(receiver.callbacks) == attempt["callback_tries"].__len__() == 3
    assert attempt["callback_state"] == "failed" and not attempt["captured"]
    assert all("10 s" in (t["error"] or "") for t in attempt["callback_tries"])
    history = parse_xml((await client.post("/cmi/fim/api", content=status_request(settings, oid))).text)
    assert history.findtext("Extra/TRANS_STAT") == "A"
    assert (history.findtext("Extra/TRX1") or "").split("\t")[6] == "A"
    assert history.findtext("Extra/CAPTURE_AMT") == "0.00"

    captured = parse_xml((await client.post("/cmi/fim/api", content=post_auth_request(settings, oid))).text)
    assert captured.findtext("Response") == "Approved" and captured.findtext("ProcReturnCode") == "00"
    assert captured.findtext("OrderId") == oid
    assert captured.findtext("TransId") not in ("", paid["trans_id"])  # the capture's own number
    after = parse_xml((await client.post("/cmi/fim/api", content=status_request(settings, oid))).text)
    assert after.findtext("Extra/TRANS_STAT") == "C" and after.findtext("Extra/CAPTURE_AMT") == "3600.00"
    attempt = (await order(client, oid))["attempts"][0]
    assert attempt["captured"] and attempt["captured_by"] == "api"

    again = parse_xml((await client.post("/cmi/fim/api", content=post_auth_request(settings, oid))).text)
    assert again.findtext("Response") == "Error" and again.findtext("ProcReturnCode") == "99"
    assert again.findtext("OrderId") == oid


async def test_postauth_after_the_answer_captured_is_refused(
    client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    oid = await open_session(client, settings)
    await pay(client, oid)
    refused = parse_xml((await client.post("/cmi/fim/api", content=post_auth_request(settings, oid))).text)
    assert refused.findtext("Response") == "Error" and refused.findtext("OrderId") == oid
    attempt = (await order(client, oid))["attempts"][0]
    assert attempt["captured_by"] == "callback"


async def test_postauth_refusals(client: httpx.AsyncClient, settings: Settings, receiver: Receiver) -> None:
    unknown = parse_xml((await client.post("/cmi/fim/api", content=post_auth_request(settings, "none"))).text)
    assert unknown.findtext("Response") == "Error"
    oid = await open_session(client, settings)
    await pay(client, oid, pan="4242424242424242")  # declined: nothing to capture
    declined = parse_xml((await client.post("/cmi/fim/api", content=post_auth_request(settings, oid))).text)
    assert declined.findtext("Response") == "Error"
    receiver.callback_answers = [(200, "APPROVED")]  # acknowledged, not captured
    await pay(client, oid)
    partial = post_auth_request(settings, oid, total="10.00")
    assert (
        parse_xml((await client.post("/cmi/fim/api", content=partial)).text).findtext("Response") == "Error"
    )
    forged = post_auth_request(settings, oid, password="guess")
    answer = parse_xml((await client.post("/cmi/fim/api", content=forged)).text)
    assert answer.findtext("Response") == "Error" and answer.findtext("OrderId") == ""
    assert not (await order(client, oid))["attempts"][1]["captured"]
    whole = post_auth_request(settings, oid, total="3600.00")
    assert (
        parse_xml((await client.post("/cmi/fim/api", content=whole)).text).findtext("Response") == "Approved"
    )


# --- pages for people -------------------------------------------------------------------------


async def test_empty_transactions_page_renders(client: httpx.AsyncClient) -> None:
    assert_french_page(await client.get("/cmi/"), "Aucune session de paiement")


async def test_transactions_page_lists_sessions_and_attempts(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    oid = await open_session(client, settings)
    body = (await pay(client, oid)).json()
    page = await client.get("/cmi/")
    assert page.status_code == 200
    assert oid in page.text and body["trans_id"] in page.text
    detail = (await client.get(f"/cmi/orders/{oid}")).json()
    assert detail["attempts"][0]["callback_answer"] == "ACTION=POSTAUTH"


async def test_links_carry_the_sandbox_prefix(client: httpx.AsyncClient, settings: Settings) -> None:
    """Served at /sandbox/ on their own port: every link a page builds keeps that prefix."""
    page = await client.post("/cmi/fim/est3Dgate", data=payment_form(settings))
    assert page.status_code == 200
    assert 'action="/sandbox/cmi/fim/pay"' in page.text
    assert "/sandbox/cmi/fim/cancel?oid=" in page.text
    home = await client.get("")
    assert 'href="/sandbox/mail"' in home.text


async def test_auto_redirect_false_leaves_the_result_on_screen(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    oid = await open_session(client, settings, AutoRedirect="false")
    reply = await client.post("/cmi/fim/pay", data={"oid": oid, "pan": VISA, "expiry": FUTURE, "cvv": "000"})
    assert "Paiement accepté" in reply.text
    assert "onload=" not in reply.text
    assert "Retour au site marchand" in reply.text


# --- the bank's HASH ver3, against partners.md and against our implementation -----------------


def test_natural_order_compares_digit_runs_as_numbers_ignoring_case() -> None:
    names = ["BillToStreet12", "billtostreet2", "BillToStreet1", "amount", "Amount10x", "AMOUNT9x", "a", "a0"]
    assert signature.sorted_names(names) == [
        "a",
        "a0",
        "amount",
        "AMOUNT9x",
        "Amount10x",
        "BillToStreet1",
        "billtostreet2",
        "BillToStreet12",
    ]


def test_signed_text_escapes_backslash_then_pipe_and_trims_values() -> None:
    fields = {
        "oid": "  A|B  ",
        "amount": "10.00",
        "BillToName": "C:\\dir\\|x",
        "HASH": "ignored",
        "encoding": "UTF-8",
        "Field2": "two",
        "Field10": "ten",
    }
    text = signature.signed_text(fields, "key|\\")
    assert text == "10.00|C:\\\\dir\\\\\\|x|two|ten|A\\|B|key\\|\\\\"
    expected = base64.b64encode(hashlib.sha512(text.encode()).digest()).decode()
    assert signature.sign(fields, "key|\\") == expected


def test_check_accepts_the_right_hash_only() -> None:
    fields = {"oid": "1", "amount": "5.00", "encoding": "UTF-8"}
    fields["HASH"] = signature.sign(fields, "k")
    assert signature.check(fields, "k")
    assert not signature.check(fields, "other")
    assert not signature.check({**fields, "amount": "6.00"}, "k")
    # encoding is not signed: changing it does not matter.
    assert signature.check({**fields, "encoding": "ISO-8859-1"}, "k")
    assert not signature.check({k: v for k, v in fields.items() if k != "HASH"}, "k")


def test_agrees_with_our_implementation_on_random_forms() -> None:
    rng = random.Random(20260101)
    alphabet = string.ascii_letters + string.digits + " |\\.-_éà"
    for _ in range(300):
        fields = {}
        for _ in range(rng.randint(1, 12)):
            name = rng.choice(["BillToStreet", "field", "Amount", "x", "EXTRA.", "ok"]) + rng.choice(
                ["", str(rng.randint(0, 120)), rng.choice(string.ascii_letters)]
            )
            fields[name] = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 15)))
        key = "".join(rng.choice(string.ascii_letters + "|\\") for _ in range(16))
        assert signature.sign(fields, key) == cmi_protocol.compute_hash(fields, key)
        fields["HASH"] = cmi_protocol.compute_hash(fields, key)
        assert signature.check(fields, key)
        assert cmi_protocol.verify_hash({**fields, "HASH": signature.sign(fields, key)}, key)


async def test_our_api_reader_agrees_with_the_bank(
    client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    """Our side (portnet/protocols/cmi_api.py) reads what the bank answers, field rules included."""
    oid = await open_session(client, settings, oid="PN0123456789AB")
    declined = (await pay(client, oid, pan="4242424242424242")).json()
    approved = (await pay(client, oid, answers_lost=True)).json()
    query = cmi_api.order_history_request(
        settings.cmi_api_name, settings.cmi_api_password, settings.cmi_client_id, oid
    )
    history = cmi_api.read_answer((await client.post("/cmi/fim/api", content=query)).content, oid)
    assert history.state_of(declined["trans_id"]) == cmi_api.DECLINED
    assert history.state_of(approved["trans_id"]) == cmi_api.AUTHORISED
    capture = cmi_api.post_auth_request(
        settings.cmi_api_name, settings.cmi_api_password, settings.cmi_client_id, oid
    )
    assert cmi_api.read_answer((await client.post("/cmi/fim/api", content=capture)).content, oid).approved
    history = cmi_api.read_answer((await client.post("/cmi/fim/api", content=query)).content, oid)
    assert history.state_of(approved["trans_id"]) == cmi_api.CAPTURED
    unknown = cmi_api.order_history_request(
        settings.cmi_api_name, settings.cmi_api_password, settings.cmi_client_id, "PN000000000000"
    )
    nothing = cmi_api.read_answer(
        (await client.post("/cmi/fim/api", content=unknown)).content, "PN000000000000"
    )
    assert nothing.transactions == () and nothing.state_of(approved["trans_id"]) is None
