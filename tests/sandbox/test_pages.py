"""The pages people click through render, empty or not, in French."""

from __future__ import annotations

import httpx


async def test_empty_pages_render(client: httpx.AsyncClient) -> None:
    for path, text in [
        ("/", "Bacs à sable des partenaires"),
        ("/cmi/", "Aucune session de paiement"),
        ("/mail", "Aucun message"),
        ("/emitters/", "Aucun avis reçu"),
    ]:
        reply = await client.get(path)
        assert reply.status_code == 200, path
        assert reply.headers["content-type"].startswith("text/html"), path
        assert text in reply.text, path
        assert '<html lang="fr">' in reply.text


async def test_auto_ack_toggle(client: httpx.AsyncClient) -> None:
    reply = await client.post("/emitters/auto-ack", data={"enabled": "0"})
    assert reply.status_code == 303
    assert "suspendu" in (await client.get("/emitters/")).text
    await client.post("/emitters/auto-ack", data={"enabled": "1"})
    assert "actif" in (await client.get("/emitters/")).text


async def test_clear_button(client: httpx.AsyncClient) -> None:
    reply = await client.post("/mail/clear")
    assert reply.status_code == 303
    assert reply.headers["location"].endswith("/mail")
