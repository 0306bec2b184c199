"""The portal's codec endpoint: finance reads decoded payloads in the Temporal Web UI, nobody else."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from google.protobuf import json_format
from sqlmodel import Session
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from portnet.models import User
from portnet.security import hash_password
from portnet.settings import get_settings
from portnet.temporal_codec import ENCODING, KEY_ID_METADATA, payload_codec
from web.app import create_app
from web.codec_server import MAX_BODY_BYTES
from web.sessions import SESSION_COOKIE
from workflows.types import PayerInfo

UI = "http://127.0.0.1:8233"  # TEMPORAL_UI_URL's default: the Web UI's origin
PAYER = PayerInfo(name="Karim Alaoui", email="karim.alaoui@example.ma", phone="+212600000001")


@pytest_asyncio.fixture
async def portal(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as client:
        yield client


async def login(portal: httpx.AsyncClient, username: str, password: str = "Portnet2026!") -> None:
    response = await portal.post("/api/v1/session", json={"username": username, "password": password})
    assert response.status_code == 200, response.text


def body_of(payloads: list[Payload]) -> dict[str, Any]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


def payloads_of(answer: httpx.Response) -> list[Payload]:
    return [json_format.ParseDict(p, Payload()) for p in answer.json()["payloads"]]


async def sealed_payer() -> tuple[Payload, Payload]:
    [clear] = await DataConverter.default.encode([PAYER])
    [sealed] = await payload_codec(get_settings()).encode([clear])
    return clear, sealed


def ui_post(payloads: list[Payload]) -> dict[str, Any]:
    """What the Web UI sends: JSON, its origin, the namespace."""
    return {
        "json": body_of(payloads),
        "headers": {"Origin": UI, "X-Namespace": get_settings().temporal_namespace},
    }


async def test_finance_gets_the_clear_payload_with_cors_for_the_ui(portal: httpx.AsyncClient) -> None:
    clear, sealed = await sealed_payer()
    assert PAYER.email.encode() not in sealed.SerializeToString()
    await login(portal, "finance")
    answer = await portal.post("/temporal-codec/decode", **ui_post([sealed]))
    assert answer.status_code == 200, answer.text
    assert payloads_of(answer) == [clear]
    assert answer.headers["access-control-allow-origin"] == UI
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in answer.headers["vary"]
    assert answer.headers["cache-control"] == "no-store"
    # The protobuf JSON form, bytes as base64, as the UI and the CLI read it.
    raw = answer.json()["payloads"][0]
    assert json.loads(base64.b64decode(raw["data"])) == {
        "name": PAYER.name, "email": PAYER.email, "phone": PAYER.phone
    }  # fmt: skip


async def test_admin_may_decode_too(portal: httpx.AsyncClient) -> None:
    clear, sealed = await sealed_payer()
    await login(portal, "admin")
    answer = await portal.post("/temporal-codec/decode", json=body_of([sealed]))
    assert answer.status_code == 200 and payloads_of(answer) == [clear]


async def test_a_client_session_is_refused(portal: httpx.AsyncClient) -> None:
    _, sealed = await sealed_payer()
    await login(portal, "sataa")
    for operation in ("decode", "encode"):
        answer = await portal.post(f"/temporal-codec/{operation}", **ui_post([sealed]))
        assert answer.status_code == 403 and answer.json()["code"] == "finance_only"
        assert PAYER.email not in answer.text
        # The UI may read the refusal (and show it) rather than a bare network error.
        assert answer.headers["access-control-allow-origin"] == UI


async def test_no_session_is_401(portal: httpx.AsyncClient) -> None:
    _, sealed = await sealed_payer()
    for operation in ("decode", "encode"):
        answer = await portal.post(f"/temporal-codec/{operation}", **ui_post([sealed]))
        assert answer.status_code == 401 and answer.json()["code"] == "authentication_required"
    portal.cookies.set(SESSION_COOKIE, "forged-or-expired")
    assert (await portal.post("/temporal-codec/decode", **ui_post([sealed]))).status_code == 401


async def test_a_finance_user_who_must_change_password_is_refused(
    portal: httpx.AsyncClient, db: Session
) -> None:
    name = f"fin-{uuid.uuid4().hex[:8]}"
    db.add(User(username=name, password_hash=hash_password("Temp-Password-2026"), role="finance",
                must_change_password=True))  # fmt: skip
    db.commit()
    _, sealed = await sealed_payer()
    await login(portal, name, "Temp-Password-2026")
    answer = await portal.post("/temporal-codec/decode", **ui_post([sealed]))
    assert answer.status_code == 403 and answer.json()["code"] == "password_change_required"


async def test_cors_preflight_of_the_ui(portal: httpx.AsyncClient) -> None:
    request_headers = {
        "Origin": UI,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    for operation in ("decode", "encode"):
        answer = await portal.options(f"/temporal-codec/{operation}", headers=request_headers)
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == UI
        assert answer.headers["access-control-allow-credentials"] == "true"
        assert "POST" in answer.headers["access-control-allow-methods"]
        allowed = {h.strip() for h in answer.headers["access-control-allow-headers"].split(",")}
        assert {"content-type", "x-namespace"} <= allowed
    foreign = await portal.options(
        "/temporal-codec/decode", headers={**request_headers, "Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403 and "access-control-allow-origin" not in foreign.headers
    assert (await portal.options("/temporal-codec/download", headers=request_headers)).status_code == 404


async def test_a_foreign_origin_is_refused_even_with_a_finance_session(portal: httpx.AsyncClient) -> None:
    _, sealed = await sealed_payer()
    await login(portal, "finance")
    answer = await portal.post(
        "/temporal-codec/decode", json=body_of([sealed]), headers={"Origin": "http://127.0.0.1:9999"}
    )
    assert answer.status_code == 403 and "access-control-allow-origin" not in answer.headers
    assert PAYER.email not in answer.text


async def test_encode_seals_with_the_current_key(portal: httpx.AsyncClient) -> None:
    clear, _ = await sealed_payer()
    await login(portal, "finance")
    answer = await portal.post("/temporal-codec/encode", **ui_post([clear]))
    assert answer.status_code == 200
    [sealed] = payloads_of(answer)
    codec = payload_codec(get_settings())
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == codec.current_key_id.encode()
    assert await codec.decode([sealed]) == [clear]


async def test_unencoded_payloads_come_back_unchanged(portal: httpx.AsyncClient) -> None:
    clear, sealed = await sealed_payer()
    await login(portal, "finance")
    answer = await portal.post("/temporal-codec/decode", **ui_post([clear, sealed]))
    assert answer.status_code == 200 and payloads_of(answer) == [clear, clear]
    empty = await portal.post("/temporal-codec/decode", **ui_post([]))
    assert empty.status_code == 200 and empty.json() == {"payloads": []}


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"{not json", {}, 400),
        (b'{"payloads": 5}', {}, 400),
        (b"[]", {}, 400),
        (b'{"payloads": [{"data": 5}]}', {}, 400),
        (b'{"payloads": [{"unknown": "x"}]}', {}, 400),
        (b'{"payloads": [{"metadata": {"encoding": 7}}]}', {}, 400),
        (b"\xff\xfe", {}, 400),
        (b"[" * 100_000, {}, 400),
        (b'{"payloads": []}', {"Content-Type": "text/plain"}, 415),
        (b'{"payloads": []}', {"X-Namespace": "someone-else"}, 403),
    ],
)
async def test_bad_requests_get_a_clear_4xx(
    portal: httpx.AsyncClient, content: bytes, headers: dict[str, str], status: int
) -> None:
    await login(portal, "finance")
    answer = await portal.post(
        "/temporal-codec/decode", content=content, headers={"Content-Type": "application/json", **headers}
    )
    assert answer.status_code == status, answer.text
    assert "detail" in answer.json()


async def test_tampered_or_foreign_ciphertext_is_400(portal: httpx.AsyncClient) -> None:
    _, sealed = await sealed_payer()
    tampered = Payload()
    tampered.CopyFrom(sealed)
    tampered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    unknown = Payload()
    unknown.CopyFrom(sealed)
    unknown.metadata[KEY_ID_METADATA] = b"retired-2019"
    await login(portal, "finance")
    for payload in (tampered, unknown):
        answer = await portal.post("/temporal-codec/decode", **ui_post([payload]))
        assert answer.status_code == 400 and answer.json()["code"] == "undecodable"


async def test_oversized_body_is_413(portal: httpx.AsyncClient) -> None:
    await login(portal, "finance")
    big = b'{"payloads": [{"data": "' + b"A" * (MAX_BODY_BYTES + 4) + b'"}]}'
    answer = await portal.post(
        "/temporal-codec/decode", content=big, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
