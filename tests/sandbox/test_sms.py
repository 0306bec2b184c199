"""The SMS gateway: messages in over HTTP, each phone's inbox out as JSON or as a page."""

from __future__ import annotations

import httpx


async def test_messages_reach_the_phone_whatever_its_spelling(client: httpx.AsyncClient) -> None:
    for to, text in [("0600000001", "premier"), ("+212 600-000001", "second"), ("00212600000002", "autre")]:
        reply = await client.post("/sms/messages", json={"to": to, "text": text, "sender": "BP-PayDirect"})
        assert reply.status_code == 202 and reply.json()["status"] == "queued"
    inbox = (await client.get("/sms", params={"to": "+212600000001"})).json()
    assert [m["text"] for m in inbox] == ["second", "premier"]  # newest first
    assert {m["to"] for m in inbox} == {"+212600000001"} and inbox[0]["sender"] == "BP-PayDirect"
    assert inbox[0]["id"] > inbox[1]["id"] and inbox[0]["at"]
    assert [m["text"] for m in (await client.get("/sms", params={"to": "0600000002"})).json()] == ["autre"]


async def test_inbox_page(client: httpx.AsyncClient) -> None:
    empty = await client.get("/sms")
    assert empty.status_code == 200 and "Aucun SMS." in empty.text
    await client.post("/sms/messages", json={"to": "+212600000001", "text": "code 123456", "sender": "BP"})
    await client.post("/sms/messages", json={"to": "+212600000002", "text": "autre chose", "sender": "BP"})
    page = await client.get("/sms", params={"phone": "0600000001"})
    assert "code 123456" in page.text and "autre chose" not in page.text
    assert "?phone=%2B212600000002" in page.text  # every phone that received something


async def test_a_message_must_be_a_json_object(client: httpx.AsyncClient) -> None:
    assert (await client.post("/sms/messages", content=b"to=0600000001")).status_code == 400
    assert (await client.post("/sms/messages", json=["+212600000001", "x"])).status_code == 400
