"""Cross-site request refusal and the security headers of every answer: two pure ASGI middlewares.

**Cross-site requests.** The portal and the API share one session cookie. SameSite=Lax keeps it off
most cross-site requests, the portal's forms carry CSRF tokens and FastAPI parses a body as JSON only
when it says it is JSON; but a body-less POST (``/payments/{id}/cancel``, finance ``/confirm``) has
none of those, and SameSite is a browser policy we do not control (old browsers, same-site sibling
hosts). So every state-changing request (any method but GET, HEAD, OPTIONS, TRACE) that carries a
session cookie must come from our own origin, as browsers state it:

- ``Origin`` present: it must be the scheme, host and port of ``PUBLIC_BASE_URL``, exactly
  (``null``, sent after a cross-origin redirect or from a sandboxed frame, is not ours);
- ``Sec-Fetch-Site: cross-site`` or ``same-site`` (another host of the same site) is refused too;
- neither header: not a browser's cross-site request (browsers send ``Origin`` on every POST), so
  the other defences apply as before (command-line and server clients do not send them).

The request's own ``Host`` is deliberately not accepted as "ours": behind a proxy it is the
internal name, and after TLS termination its scheme is wrong, so accepting it would make the check
depend on proxy configuration, and a Host-header trick could widen it. ``PUBLIC_BASE_URL`` must be
the address users type anyway: CMI, Amanpay and the e-mails send them back there.

Requests without a session cookie are not concerned (no ambient authority to abuse): partners'
server-to-server callbacks under /api/v1/callbacks are signed, and the login form has its
double-submit token. Not concerned either: CMI's browser return to ``/paiements/{id}/retour`` (a
cross-site POST by design that changes nothing). The partner sandboxes are not on the portal's
origin at all (their own process, ``SANDBOX_BASE_URL``). The Temporal Web UI's codec calls
(``/temporal-codec/``, finance's session, CORS) may also come from ``TEMPORAL_UI_URL``'s origin.

**Security headers**, on every answer (HTML, JSON, PDF, redirects, errors, static files): ``nosniff``;
``Cache-Control: no-store`` on anything answered to a request with a session cookie and on all of
/api (static assets stay cacheable); ``frame-ancestors 'none'`` (portal pages set their own full
CSP in web/pages/rendering.py; API answers get ``default-src 'none'``); ``X-Frame-Options`` for old
browsers; ``Referrer-Policy: same-origin`` (no payment id in a Referer to a partner); and
``Strict-Transport-Security`` in production (``HSTS_MAX_AGE_SECONDS``). The 500 page, which
Starlette sends from outside every middleware, gets the same headers from ``security_headers``.

Pure ASGI rather than ``BaseHTTPMiddleware``: no extra task per request, and streamed answers (PDFs)
pass through untouched.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portnet.i18n import N_
from portnet.settings import Settings
from web.sessions import SESSION_COOKIE

log = logging.getLogger("portnet.web.security")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CROSS_SITE_MESSAGE = N_(
    "Requête refusée : elle ne provient pas du portail PortNet Paiements. "
    "Ouvrez le portail à son adresse habituelle et recommencez."
)
CROSS_SITE_CODE = "cross_site_request"
# Paths whose cross-site POSTs are expected and harmless (see the module docstring).
UNGUARDED = (re.compile(r"^/paiements/[^/]+/retour$"),)
CODEC_PREFIX = "/temporal-codec/"
STATIC_PREFIX = "/static/"
API_PREFIX = "/api/"
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DEFAULT_CSP = "frame-ancestors 'none'"


def origin_of(url: str | None) -> str | None:
    """``scheme://host[:port]`` as a browser writes it in ``Origin`` (default ports left out)."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == {"http": 80, "https": 443}[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return str(value.decode("latin-1"))
    return None


def has_session_cookie(scope: Scope) -> bool:
    """Whether the request carries our session cookie (under its plain or ``__Host-`` name)."""
    raw = _header(scope, b"cookie")
    if not raw:
        return False
    return any(name.endswith(SESSION_COOKIE) and value for name, value in cookie_parser(raw).items())


def allowed_origins(settings: Settings, path: str) -> set[str]:
    origins = {origin_of(settings.public_base_url)}
    if path.startswith(CODEC_PREFIX):
        origins.add(origin_of(settings.temporal_ui_url))
    return {o for o in origins if o}


def cross_site_reason(scope: Scope, settings: Settings) -> str | None:
    """Why this request must be refused as cross-site, or None when it may go on."""
    if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
        return None
    path: str = scope["path"]
    if any(pattern.match(path) for pattern in UNGUARDED) or not has_session_cookie(scope):
        return None
    origin = _header(scope, b"origin")
    fetch_site = (_header(scope, b"sec-fetch-site") or "").strip().lower()
    allowed = allowed_origins(settings, path)
    if origin is not None and origin_of(origin) not in allowed:
        return f"origin {origin!r}"
    if fetch_site == "cross-site":
        return "Sec-Fetch-Site: cross-site"
    if fetch_site == "same-site" and origin_of(origin) not in allowed:
        return "Sec-Fetch-Site: same-site"
    return None


class CrossSiteGuard:
    """Refuses, with 403, a state-changing request carrying a session cookie from another origin."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reason = cross_site_reason(scope, self.settings)
        if reason is None:
            await self.app(scope, receive, send)
            return
        log.warning("cross-site %s %s refused: %s", scope["method"], scope["path"], reason)
        response = self._refusal(scope)
        await response(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response:
        if scope["path"].startswith(API_PREFIX):
            return JSONResponse({"detail": CROSS_SITE_MESSAGE, "code": CROSS_SITE_CODE}, status_code=403)
        from web.pages.rendering import render  # the portal's templates; imported when first needed

        request = Request(scope)
        request.state.user = None  # no database round trip for a request we refuse
        return render(
            request,
            "error.html",
            {"title": N_("Accès refusé"), "status": 403, "message": CROSS_SITE_MESSAGE},
            status_code=403,
            settings=self.settings,
        )


def security_headers(headers: MutableHeaders, scope: Scope, settings: Settings) -> None:
    """Puts the security headers on one answer; what a page set itself (its CSP) is kept."""
    path: str = scope.get("path", "")
    api = path.startswith(API_PREFIX)
    headers["X-Content-Type-Options"] = "nosniff"
    if api or (has_session_cookie(scope) and not path.startswith(STATIC_PREFIX)):
        headers["Cache-Control"] = "no-store"
    if "content-security-policy" not in headers:
        headers["Content-Security-Policy"] = API_CSP if api else DEFAULT_CSP
    if "x-frame-options" not in headers:
        headers["X-Frame-Options"] = "DENY"
    if "referrer-policy" not in headers:
        headers["Referrer-Policy"] = "same-origin"
    if settings.is_production and settings.hsts_max_age_seconds > 0:
        headers["Strict-Transport-Security"] = f"max-age={settings.hsts_max_age_seconds}"


class SecurityHeaders:
    """Adds ``security_headers`` to the start of every HTTP answer that passes through."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                security_headers(MutableHeaders(scope=message), scope, self.settings)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_security(app: Any, settings: Settings) -> None:
    """The guard inside, the headers outside: a refusal gets the headers too."""
    app.add_middleware(CrossSiteGuard, settings=settings)
    app.add_middleware(SecurityHeaders, settings=settings)
