"""The sandboxes as an app of their own: index and health, their own process (``python -m sandbox``,
as `make run` starts it, mail sink included), and a memory that outlives them: a new app or a new
process on the same store finds every partner's state, and finishes the deliveries left pending."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
import pytest

from bench._common import free_port
from portnet import launcher
from portnet.settings import ROOT, Settings
from sandbox.app import create_sandbox_app, running
from sandbox.context import Sandbox
from tests.support.sandbox import (
    PAYDIRECT_HEADER,
    RECEIVER,
    Message,
    Receiver,
    amanpay_order,
    assert_french_page,
    open_session,
    sandbox_client,
    signed_json,
    token_request,
)

VISA = {"pan": "4000000000000010", "expiry": "12/40", "cvv": "000"}
SATAA_WALLET = {"login": "amanty.sataa@demo.ma", "password": "Amanty2026!"}


def notice_headers(settings: Settings, body: bytes) -> dict[str, str]:
    """Our settlement notice's signature, as activities/emitters.py makes it."""
    label = b"EMITTER_SETTLEMENT_NOTICE\n"
    signature = hmac.new(settings.emitter_shared_key.encode(), label + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-PortNet-Signature": signature}


@asynccontextmanager
async def life(
    settings: Settings, receiver: Receiver, mail_sink: bool = False
) -> AsyncIterator[tuple[Sandbox, httpx.AsyncClient]]:
    """One run of the sandboxes on ``settings``' store: a new app each time, as after a restart."""
    app = create_sandbox_app(settings, mail_sink=mail_sink)
    handle: Sandbox = app.state.sandbox
    handle.outbound.transport = httpx.ASGITransport(app=receiver.app())
    handle.tuning.cmi_callback_max_tries = 10
    handle.tuning.cmi_callback_backoff_seconds = 0.05
    handle.tuning.emitter_ack_backoff_seconds = 0.05
    async with running(handle, mail_sink=mail_sink), sandbox_client(app) as http:
        yield handle, http


async def test_index_and_health(client: httpx.AsyncClient) -> None:
    assert_french_page(await client.get(""), "Bacs à sable des partenaires")
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_a_restart_keeps_every_partners_memory(settings: Settings) -> None:
    notice = {
        "notice_id": "NOT-RESTART-1",
        "payment_id": "PN00000000R001",
        "invoices": [{"number": "ANP-F-1", "amount_ttc": "120.00"}],
        "amount": "120.00",
        "paid_at": "2026-11-27T10:00:00+01:00",
        "ack_url": f"{RECEIVER}/emitters/ack",
    }
    receiver = Receiver()
    async with life(settings, receiver, mail_sink=True) as (_, http):
        oid = await open_session(http, settings, oid="PN00000000R001")
        card = (await http.post("/cmi/card-payments", json={"oid": oid, **VISA})).json()
        assert card["result"] == "approved" and card["callback_state"] == "delivered"
        expires = datetime.now(UTC) + timedelta(hours=3)
        token = (
            await http.post("/fatourati/api/tokens", json=token_request(settings, "PN00000000R002", expires))
        ).json()
        assert (await amanpay_order(http, settings, "PN00000000R003", method="amanty")).status_code == 201
        paid = await http.post("/amanpay/amanty/PN00000000R003", data={**SATAA_WALLET, "action": "confirm"})
        assert paid.status_code == 303
        contract = {"contract_number": "PD1002457", "cin": "BE123456", "phone": "+212600000001"}
        raw, headers = signed_json(
            {"order_id": "PN00000000R004", "amount": "99.00", **contract},
            settings.paydirect_secret_key,
            Message.AUTHORIZATION_CREATE,
            PAYDIRECT_HEADER,
        )
        auth = (await http.post("/paydirect/api/authorizations", content=raw, headers=headers)).json()
        sms = (await http.get("/sms", params={"to": "+212600000001"})).json()
        code = re.search(r"code secret est (\d{6})", sms[0]["text"])
        assert code is not None
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = "paiements@portnet.ma", "tresorerie@sataa.ma", "Reçu"
        mail.set_content("Votre paiement est confirmé.")
        await aiosmtplib.send(mail, hostname="127.0.0.1", port=settings.sandbox_smtp_port)
        assert (await http.post("/emitters/auto-ack", data={"enabled": "0"})).status_code == 303
        body = json.dumps(notice).encode()
        held = await http.post(
            "/emitters/ANP/settlements", content=body, headers=notice_headers(settings, body)
        )
        assert held.status_code == 202
        await http.post("/marsa-maroc/admin/faults", json={"kind": "error", "times": 3})

    async with life(settings, receiver) as (handle, http):
        order = (await http.get(f"/cmi/orders/{oid}")).json()
        assert order["status"] == "Payée (capturée)" and order["attempts"][0]["trans_id"] == card["trans_id"]
        assert card["trans_id"] in (await http.get("/cmi/")).text
        again = await http.post(
            "/fatourati/api/tokens", json=token_request(settings, "PN00000000R002", expires)
        )
        assert again.json()["tokenRef"] == token["tokenRef"]  # the same order keeps its reference
        assert (await http.get(f"/fatourati/api/tokens/{token['tokenRef']}")).json()["status"] == "PENDING"
        assert "248\u202f080,00 MAD" in (await http.get("/amanpay")).text  # the wallet stays debited
        raw, headers = signed_json(
            {"otp": code.group(1), "request_id": "after-restart"},
            settings.paydirect_secret_key,
            Message.OTP_VERIFY,
            PAYDIRECT_HEADER,
        )
        verdict = await http.post(
            f"/paydirect/api/authorizations/{auth['auth_ref']}/verify", content=raw, headers=headers
        )
        assert verdict.json()["result"] == "authorized"  # the code sent before the restart still works
        [message] = (await http.get("/mail", params={"to": "tresorerie@sataa.ma"})).json()
        assert message["subject"] == "Reçu"
        assert (await http.get(f"/mail/{message['id']}/raw")).status_code == 200
        assert "suspendu" in (await http.get("/emitters/")).text
        [kept] = (await http.get("/emitters/ANP/settlements")).json()
        assert kept["ack_state"] == "paused" and kept["payment_id"] == "PN00000000R001"
        await http.post("/emitters/auto-ack", data={"enabled": "1"})
        await handle.background.wait_idle()
        assert (await http.get("/emitters/ANP/settlements/NOT-RESTART-1")).json()["ack_state"] == "delivered"
        assert (await http.get("/marsa-maroc/admin/state")).json()["fault"] == "error"


async def test_a_pending_callback_goes_out_after_a_restart(settings: Settings) -> None:
    down = Receiver(callback_answers=[(503, "down")])
    async with life(settings, down) as (_, http):
        oid = await open_session(http, settings, oid="PN00000000R010")
        paid = (await http.post("/cmi/card-payments", json={"oid": oid, **VISA})).json()
        assert paid["result"] == "approved" and paid["callback_state"] == "retrying"
    sent_before = len(down.callbacks)  # the first try, perhaps a retry before the stop: all refused

    up = Receiver()
    async with life(settings, up) as (handle, http):
        await handle.background.wait_idle()
        [callback] = up.callbacks
        assert callback["TransId"] == paid["trans_id"] and callback["ProcReturnCode"] == "00"
        attempt = (await http.get(f"/cmi/orders/{oid}")).json()["attempts"][0]
        assert attempt["callback_state"] == "delivered" and attempt["captured"]
        assert [t["answer"] for t in attempt["callback_tries"]] == ["down"] * sent_before + [
            "ACTION=POSTAUTH"
        ]


async def test_a_scheduled_acknowledgement_goes_out_after_a_restart(settings: Settings) -> None:
    notice = {
        "notice_id": "NOT-RESTART-2",
        "payment_id": "PN00000000R011",
        "invoices": [{"number": "ANP-F-2", "amount_ttc": "60.00"}],
        "amount": "60.00",
        "paid_at": "2026-11-27T10:00:00+01:00",
        "ack_url": f"{RECEIVER}/emitters/ack",
    }
    body = json.dumps(notice).encode()
    down = Receiver(ack_statuses=[503])
    async with life(settings, down) as (handle, http):
        handle.tuning.emitter_ack_delay_seconds = 0.2
        reply = await http.post(
            "/emitters/ANP/settlements", content=body, headers=notice_headers(settings, body)
        )
        assert reply.status_code == 202
    up = Receiver()
    async with life(settings, up) as (handle, http):
        await handle.background.wait_idle()
        [(ack, _)] = up.acks
        assert json.loads(ack)["emitter_ack_id"] == reply.json()["emitter_ack_id"]
        state = (await http.get("/emitters/ANP/settlements/NOT-RESTART-2")).json()
        assert state["ack_state"] == "delivered"


# --- its own process ---------------------------------------------------------------------------


@contextmanager
def sandbox_process(env: dict[str, str], port: int) -> Iterator[str]:
    """``python -m sandbox`` as `make run` starts it; stopped by its own process group's SIGTERM."""
    process = subprocess.Popen(  # noqa: S603 - our own fixed command line
        [sys.executable, "-m", "sandbox"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/sandbox"
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=2) as http:  # one client: each new one costs ~30 ms of CPU
            while True:
                assert process.poll() is None, process.communicate()[0].decode()
                try:
                    if http.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the sandboxes did not start"
                time.sleep(0.1)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def test_runs_as_its_own_process_and_restarts_with_its_memory(tmp_path: Path) -> None:
    port, smtp_port = free_port(), free_port()
    env = {
        **os.environ,
        "PORTNET_ENV": "development",
        "SANDBOX_BASE_URL": f"http://127.0.0.1:{port}",
        "SANDBOX_DATABASE_URL": f"sqlite:///{tmp_path / 'sandbox.db'}",
        "SANDBOX_SMTP_PORT": str(smtp_port),
    }
    with sandbox_process(env, port) as base:
        sent = httpx.post(f"{base}/sms/messages", json={"to": "0600000001", "text": "avant", "sender": "BP"})
        assert sent.status_code == 202
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = "paiements@portnet.ma", "finance@portnet.ma", "Avant"
        mail.set_content("Gardé au redémarrage.")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:  # the sink runs in that process
            smtp.send_message(mail)
    with sandbox_process(env, port) as base:
        assert [m["text"] for m in httpx.get(f"{base}/sms", params={"to": "+212600000001"}).json()] == [
            "avant"
        ]
        assert [
            m["subject"] for m in httpx.get(f"{base}/mail", params={"to": "finance@portnet.ma"}).json()
        ] == ["Avant"]
        assert httpx.get(f"http://127.0.0.1:{port}/", follow_redirects=True).status_code == 200


def test_make_run_starts_a_stopped_sandbox_again_but_not_a_crashing_one() -> None:
    quick = [sys.executable, "-c", "pass"]
    old = launcher.spawn(launcher.SANDBOX, quick)
    old.proc.wait(timeout=30)
    crashed = launcher.spawn(launcher.SANDBOX, quick)
    crashed.proc.wait(timeout=30)
    old.started_at -= launcher.SANDBOX_MIN_UPTIME  # it had been up a while: a restart, not a crash
    children = [old, crashed]
    launcher.restart_stopped_sandbox(children)
    try:
        assert children[0] is not old and children[0].command == quick and children[0].name == "sandbox"
        assert children[1] is crashed  # stopped right after its start: check_alive stops everything
        with pytest.raises(launcher.ChildDied):
            launcher.check_alive([crashed])
    finally:
        launcher.stop(children)
