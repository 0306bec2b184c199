"""The portal's pages as a person uses them: log in through the form, read the page's CSRF token."""

from __future__ import annotations

import re

import httpx

PASSWORD = "Portnet2026!"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class NoTemporal:
    """Temporal is down (or not needed: a finished attempt is read from the ledger): what
    ``app.state.temporal`` answers then."""

    async def get(self) -> None:
        return None


def token_of(html: str) -> str:
    match = TOKEN.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, next_url: str | None = None
) -> httpx.Response:
    page = await client.get("/connexion")
    data = {"username": username, "password": password, "csrf_token": token_of(page.text)}
    if next_url is not None:
        data["next"] = next_url
    return await client.post("/connexion", data=data)


async def logged_in(client: httpx.AsyncClient, username: str) -> str:
    """Logs in and returns a CSRF token of the new session."""
    response = await login(client, username)
    assert response.status_code == 303, response.text
    page = await client.get("/factures")
    assert page.status_code == 200
    return token_of(page.text)
