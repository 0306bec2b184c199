"""The remote codec endpoint the Temporal Web UI (and the `temporal` CLI) call to read our payloads.

Histories hold only ciphertext (portnet/temporal_codec.py). Temporal's codec server protocol: POST
``<endpoint>/decode`` or ``<endpoint>/encode`` with ``{"payloads": [...]}`` in protobuf JSON form
(bytes as base64), answered in the same form; the caller names the namespace in ``X-Namespace``.

Who may read: a finance (or admin) session of the portal, by its cookie. The Web UI runs on another
origin, so it sends the cookie only when told to include cross-origin credentials, and the browser
lets it read the answer only if we allow exactly the UI's origin (``TEMPORAL_UI_URL``) with
credentials; no other origin gets CORS headers, and a request from a foreign origin is refused.
Encoding is finance-only too: whoever can encode can forge payloads that our workers would trust.
The answers are never cached (decoded personal data).
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from portnet.i18n import N_
from portnet.models import User
from portnet.settings import Settings
from portnet.statuses import Role
from portnet.temporal_codec import EncryptionCodec, PayloadDecryptionError
from web.deps import AppSettings, optional_user

log = logging.getLogger("portnet.web.codec")

PREFIX = "/temporal-codec"
OPERATIONS = ("decode", "encode")
# A history page's worth of payloads; Temporal itself refuses payloads over 2 MB.
MAX_BODY_BYTES = 8 * 1024 * 1024
ALLOWED_HEADERS = "content-type, x-namespace"

router = APIRouter(prefix=PREFIX, tags=["temporal-codec"])

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["payloads"],
                    "properties": {
                        "payloads": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "metadata": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string", "format": "byte"},
                                    },
                                    "data": {"type": "string", "format": "byte"},
                                },
                            },
                        }
                    },
                }
            }
        },
    }
}


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` as a browser writes it in ``Origin``."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}" if parts.scheme and parts.netloc else ""


def _cors_headers(request: Request, settings: Settings) -> dict[str, str]:
    origin = request.headers.get("origin")
    headers = {"Vary": "Origin"}
    if origin and origin == origin_of(settings.temporal_ui_url):
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers


def _answer(request: Request, settings: Settings, status: int, body: dict[str, Any]) -> JSONResponse:
    response = JSONResponse(body, status_code=status, headers=_cors_headers(request, settings))
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(request: Request, settings: Settings, status: int, code: str, message: str) -> JSONResponse:
    return _answer(request, settings, status, {"detail": message, "code": code})


def _origin_allowed(request: Request, settings: Settings) -> bool:
    """No Origin (the CLI, scripts) or the UI's or our own; any other page is refused outright."""
    origin = request.headers.get("origin")
    return origin is None or origin in (
        origin_of(settings.temporal_ui_url),
        origin_of(settings.public_base_url),
    )


async def _read_capped(request: Request) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> Payloads | None:
    """``{"payloads": [...]}`` in protobuf JSON form, or None for anything else."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("payloads"), list):
            return None
        return json_format.ParseDict(data, Payloads())
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError):
        return None


def _codec(request: Request) -> EncryptionCodec:
    codec: EncryptionCodec = request.app.state.payload_codec
    return codec


async def _serve(request: Request, user: User | None, settings: Settings, operation: str) -> Response:
    if not _origin_allowed(request, settings):
        return _error(request, settings, 403, "origin_refused", N_("Origine non autorisée."))
    if user is None:
        return _error(request, settings, 401, "authentication_required", N_("Authentification requise."))
    if user.role not in (Role.FINANCE.value, Role.ADMIN.value):
        return _error(request, settings, 403, "finance_only", N_("Réservé au service financier."))
    if user.must_change_password:
        return _error(
            request,
            settings,
            403,
            "password_change_required",
            N_("Changez votre mot de passe avant de continuer."),
        )
    namespace = request.headers.get("x-namespace")
    if namespace is not None and namespace != settings.temporal_namespace:
        return _error(request, settings, 403, "namespace_refused", N_("Espace de noms Temporal inconnu."))
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return _error(request, settings, 415, "json_required", "Corps JSON attendu (application/json).")
    body = await _read_capped(request)
    if body is None:
        return _error(request, settings, 413, "too_large", N_("Requête trop volumineuse."))
    payloads = _parse(body)
    if payloads is None:
        return _error(request, settings, 400, "invalid_payloads", N_("Payloads Temporal invalides."))
    codec = _codec(request)
    try:
        if operation == "decode":
            result = await codec.decode(payloads.payloads)
        else:
            result = await codec.encode(payloads.payloads)
    except PayloadDecryptionError as exc:
        log.warning("codec %s refused for %s: %s", operation, user.username, exc)
        return _error(request, settings, 400, "undecodable", N_("Payload illisible avec nos clés."))
    log.info("codec %s of %d payload(s) for %s", operation, len(result), user.username)
    return _answer(
        request,
        settings,
        200,
        {"payloads": [json_format.MessageToDict(p) for p in result]},
    )


MaybeUser = Annotated[User | None, Depends(optional_user)]


@router.post("/decode", openapi_extra=_BODY_DOC)
async def decode(request: Request, user: MaybeUser, settings: AppSettings) -> Response:
    """Opens our payloads for finance; payloads recorded without encryption come back unchanged."""
    return await _serve(request, user, settings, "decode")


@router.post("/encode", openapi_extra=_BODY_DOC)
async def encode(request: Request, user: MaybeUser, settings: AppSettings) -> Response:
    """Seals payloads with the current key (the UI encodes what finance types, e.g. a signal)."""
    return await _serve(request, user, settings, "encode")


@router.options("/{operation}", include_in_schema=False)
async def preflight(operation: str, request: Request, settings: AppSettings) -> Response:
    """CORS preflight of the Web UI: only its own origin, POST, the two headers it sends."""
    if operation not in OPERATIONS:
        return Response(status_code=404)
    origin = request.headers.get("origin")
    if not origin or origin != origin_of(settings.temporal_ui_url):
        return Response(status_code=403, headers={"Vary": "Origin"})
    return Response(
        status_code=204,
        headers={
            **_cors_headers(request, settings),
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
        },
    )
