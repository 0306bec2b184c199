"""The language a request is answered in: the user's profile, then the header switch's cookie, then
the browser's ``Accept-Language``, then French (portnet/i18n.py). Pages, API errors and the payer's
language handed to partners (CMI's ``lang``) all read it from here.
"""

from __future__ import annotations

import json

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portnet import i18n
from portnet.models import User

LANGUAGE_COOKIE = "pn_lang"


def request_language(request: HTTPConnection, user: User | None = None) -> str:
    if user is None:
        user = getattr(request.state, "user", None)
    if user is not None and i18n.normalize(user.language):
        return str(i18n.normalize(user.language))
    return (
        i18n.normalize(request.cookies.get(LANGUAGE_COOKIE))
        or i18n.negotiate(request.headers.get("accept-language"))
        or i18n.DEFAULT_LANGUAGE
    )


class RequestLanguage:
    """Pure ASGI: the browser's language (cookie, then ``Accept-Language``) is in force from the start
    of each request, so a handler's own formatting (an amount, a date) already follows it; a page's
    rendering then refines it with the user's profile (web/pages/rendering.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with i18n.use_locale(request_language(HTTPConnection(scope))):
            await self.app(scope, receive, send)


# --------------------------------------------------------------------------- the API's error sentences

MAX_TRANSLATED_BODY = 64 * 1024


def _translated(body: bytes) -> bytes | None:
    """``detail`` and each ``errors[].message`` of an error answer, in the language in force."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("detail"), str):
        payload["detail"] = i18n.gettext(payload["detail"])
    for error in payload.get("errors") or []:
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            error["message"] = i18n.gettext(error["message"])
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class ApiErrorLanguage:
    """Pure ASGI: the JSON API answers its errors in the caller's language (cookie, ``Accept-Language``).

    The sentences are written in French in the code (the msgids); a French answer passes through
    untouched, any other has its ``detail`` looked up in the catalog. Only error answers (4xx, 5xx)
    of ``/api/`` with a JSON body under 64 KB are read.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        language = request_language(HTTPConnection(scope))
        if language == i18n.DEFAULT_LANGUAGE:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def sending(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                is_json = headers.get("content-type", "").startswith("application/json")
                if message["status"] >= 400 and is_json:
                    start = message
                    return
                await send(message)
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False) and sum(map(len, chunks)) <= MAX_TRANSLATED_BODY:
                return
            body = b"".join(chunks)
            translated = None
            if not message.get("more_body", False) and len(body) <= MAX_TRANSLATED_BODY:
                with i18n.use_locale(language):
                    translated = _translated(body)
            headers = MutableHeaders(raw=list(start.get("headers", [])))
            if translated is not None:
                body = translated
                headers["content-length"] = str(len(body))
                headers["content-language"] = language
            await send({**start, "headers": headers.raw})
            start = None  # whatever follows (a long body's next chunks) passes through
            chunks.clear()
            more = message.get("more_body", False)
            await send({"type": "http.response.body", "body": body, "more_body": more})

        await self.app(scope, receive, sending)
