"""Templates, filters and the one ``render`` every portal page goes through.

Going through one function is what guarantees that no page forgets the CSRF token, the user's menu,
the pending flash message or ``Cache-Control: no-store`` (an invoice list must not stay in a shared
browser's cache after logout).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.templating import Jinja2Templates

from portnet import i18n
from portnet.i18n import N_, gettext
from portnet.localtime import to_local
from portnet.models import User
from portnet.settings import Settings, get_settings
from portnet.statuses import (
    Channel,
    InvoiceStatus,
    InvoiceType,
    MessageFunction,
    PaymentMethod,
    PaymentStatus,
    Role,
)
from web.locale import request_language
from web.sessions import csrf_token, ensure_prelogin_cookie

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
FLASH_COOKIE = "pn_flash"
DASH = "—"


# --------------------------------------------------------------------------------------- filters


def money(value: Decimal | str | None, currency: str | None = "MAD") -> str:
    """Strings are accepted because the workflow view carries amounts as "3600.00"."""
    if value is None or value == "":
        return DASH
    return i18n.format_amount(Decimal(value) if isinstance(value, str) else value, currency)


def fr_date(value: datetime | date | None, with_time: bool = True) -> str:
    """Business dates (invoice date, due date) as stored: they are calendar values, not instants."""
    if value is None:
        return ""
    if isinstance(value, datetime) and with_time:
        return i18n.format_moment(value)
    return i18n.format_day(value)


def fr_stamp(value: datetime | str | None) -> str:
    """Event instants (payments, messages, documents), stored naive UTC, shown in Casablanca time."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            instant = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        instant = value
    return i18n.format_moment(to_local(instant))


def _label(enum: Any, value: str | None) -> str:
    """An unknown code is shown as is: a new status must not turn a page into a 500."""
    if not value:
        return ""
    try:
        return gettext(str(enum(value).label))
    except ValueError:
        return value


def invoice_status(value: str | None) -> str:
    return _label(InvoiceStatus, value)


def invoice_type(value: str | None) -> str:
    return _label(InvoiceType, value)


def payment_status(value: str | None) -> str:
    return _label(PaymentStatus, value)


def channel_label(value: str | None) -> str:
    return _label(Channel, value)


def method_label(value: str | None) -> str:
    return _label(PaymentMethod, value)


def message_function(value: str | None) -> str:
    return _label(MessageFunction, value)


def yes_no(value: bool | None) -> str:
    return gettext("Oui") if value else gettext("Non")


DELAYS = {
    "heure": N_("%(count)s heure"),
    "heures": N_("%(count)s heures"),
    "minutes": N_("%(count)s minutes"),
}


def translate_delay(value: str) -> str:
    """``3 heures`` / ``90 minutes`` (a deadline written in French by a channel) in the page's language."""
    match = re.fullmatch(r"(\d+) (heures?|minutes)", value.strip())
    return gettext(DELAYS[match.group(2)]) % {"count": match.group(1)} if match else value


def translate(value: str | None) -> str:
    """A French sentence computed in Python (a refusal, a workflow's message) read in the page's language."""
    return gettext(value) if value else ""


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    # The callables read the request's language (a context variable): one environment for all three.
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        money=money,
        date=fr_date,
        stamp=fr_stamp,
        invoice_status=invoice_status,
        invoice_type=invoice_type,
        payment_status=payment_status,
        channel_label=channel_label,
        method_label=method_label,
        message_function=message_function,
        yes_no=yes_no,
        translate=translate,
        translate_delay=translate_delay,
    )
    return env


templates = Jinja2Templates(env=_environment())


# ------------------------------------------------------------------------------------------ menu


@dataclass
class MenuItem:
    label: str
    href: str
    children: list[MenuItem] = field(default_factory=list)
    active: bool = False


def menu_for(user: User | None, path: str) -> list[MenuItem]:
    _ = gettext
    if user is None or user.must_change_password:
        return []
    children = [
        MenuItem(_("Gestion des factures"), "/factures"),
        MenuItem(_("Consulter des factures"), "/factures/consultation"),
    ]
    if user.role == Role.CLIENT.value:
        children.append(MenuItem(_("Nouvelle demande de facture"), "/factures/demande"))
    for child in children:
        child.active = path == child.href
    factures = MenuItem(
        _("Factures"),
        "/factures",
        children,
        active=path.startswith("/factures") or path.startswith("/paiements"),
    )
    if user.role in (Role.FINANCE.value, Role.ADMIN.value):  # the finance back-office
        finance = MenuItem(
            _("Finance"),
            "/finance/paiements",
            [
                MenuItem(_("Paiements"), "/finance/paiements"),
                MenuItem(_("En attente de confirmation"), "/finance/confirmations"),
                MenuItem(_("Encaissements non affectés"), "/finance/encaissements"),
                MenuItem(_("Factures"), "/finance/factures"),
                MenuItem(_("Demandes d'accès"), "/finance/demandes-acces"),
            ],
            active=path.startswith("/finance"),
        )
        for child in finance.children:
            child.active = path == child.href
        return [factures, finance]
    return [factures]


# ----------------------------------------------------------------------------------------- flash


def _sign(settings: Settings, payload: str) -> str:
    return hmac.new(settings.secret_key.encode(), f"flash:{payload}".encode(), hashlib.sha256).hexdigest()


def set_flash(response: Response, message: str, kind: str = "info", settings: Settings | None = None) -> None:
    """One message for the next page, in a signed cookie: the portal keeps no per-user state for it."""
    settings = settings or get_settings()
    payload = base64.urlsafe_b64encode(json.dumps([kind, message]).encode()).decode().rstrip("=")
    response.set_cookie(
        FLASH_COOKIE,
        f"{payload}.{_sign(settings, payload)}",
        max_age=120,
        httponly=True,
        samesite="lax",
        secure=settings.session_cookie_secure,
        path="/",
    )


def _read_flash(request: Request, settings: Settings) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or "." not in raw:
        return None
    payload, signature = raw.rsplit(".", 1)
    if not hmac.compare_digest(signature, _sign(settings, payload)):
        return None
    try:
        kind, message = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return None
    return {"kind": str(kind), "message": str(message)}


def redirect(
    url: str,
    message: str | None = None,
    kind: str = "info",
    settings: Settings | None = None,
    status_code: int = 303,
) -> RedirectResponse:
    """303 so that a POST is followed by a GET (no "resend the form?" on reload)."""
    response = RedirectResponse(url, status_code=status_code)
    if message:
        set_flash(response, message, kind, settings)
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------------------------------- render


def _origin(url: str | None) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""


def content_security_policy(response: Response, form_targets: tuple[str, ...] = ()) -> None:
    """A strict CSP costs nothing here (no inline script or style anywhere) and contains an XSS.

    Page-specific because of ``form-action`` (CMI's or Amanty's page for the auto-submitted form);
    the other security headers are web/security.py's, on every answer.
    """
    actions = " ".join(["'self'", *sorted({o for o in map(_origin, form_targets) if o})])
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
        f"form-action {actions}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


def render(
    request: Request,
    name: str,
    ctx: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    settings: Settings | None = None,
    form_targets: tuple[str, ...] = (),
) -> HTMLResponse:
    settings = settings or get_settings()
    user: User | None = getattr(request.state, "user", None)
    flash = _read_flash(request, settings)
    language = i18n.set_language(request_language(request, user))
    context: dict[str, Any] = {
        "lang": language,
        "dir": "rtl" if i18n.is_rtl(language) else "ltr",
        "languages": i18n.LANGUAGE_NAMES,
        "user": user,
        "csrf_token": csrf_token(request, settings),
        "settings": settings,
        "menu": menu_for(user, request.url.path),
        "flash": flash,
        "version": request.app.version if "app" in request.scope else "",
        "path": request.url.path,
        "is_client": user is not None and user.role == Role.CLIENT.value,
    }
    context.update(ctx or {})
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    if flash is not None or FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path="/")
    if user is not None:
        response.headers["Cache-Control"] = "no-store"
    content_security_policy(response, form_targets)
    return response


def render_anonymous(
    request: Request,
    name: str,
    ctx: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    settings: Settings | None = None,
) -> HTMLResponse:
    """A page for visitors who are not logged in (login, forgotten password, access request).

    Its form's CSRF token derives from the pre-login cookie, so the cookie is chosen before rendering.
    """
    settings = settings or get_settings()
    request.state.user = getattr(request.state, "user", None)
    probe = Response()
    ensure_prelogin_cookie(request, probe, settings)
    response = render(request, name, ctx, status_code=status_code, settings=settings)
    for cookie in probe.headers.getlist("set-cookie"):
        response.headers.append("set-cookie", cookie)
    response.headers["Cache-Control"] = "no-store"
    return response
