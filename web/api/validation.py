"""The API's 422 in French: one sentence in ``detail`` (as every other API error), details in ``errors``.

FastAPI's own validation answer is a list of English pydantic messages; our users' tools show
``detail`` as is, so it says in French which field is wrong and why. ``errors`` keeps, per field,
where it is (``loc``), pydantic's ``type`` (stable, for programs) and the French message.
"""

from __future__ import annotations

import email.message
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from portnet.i18n import N_, gettext

NOT_JSON = N_("Le corps de la requête doit être du JSON (en-tête Content-Type: application/json).")
UNREADABLE_BODY = N_("Corps de la requête illisible (JSON en UTF-8 attendu).")

# pydantic error type -> French sentence; ``{name}`` comes from the error's ``ctx``.
MESSAGES: dict[str, str] = {
    "missing": N_("champ obligatoire"),
    "extra_forbidden": N_("champ non prévu"),
    "int_type": N_("nombre entier attendu"),
    "int_parsing": N_("nombre entier attendu"),
    "int_from_float": N_("nombre entier attendu"),
    "int_parsing_size": N_("nombre trop grand"),
    "float_type": N_("nombre attendu"),
    "float_parsing": N_("nombre attendu"),
    "finite_number": N_("nombre fini attendu"),
    "bool_type": N_("booléen attendu (true ou false)"),
    "bool_parsing": N_("booléen attendu (true ou false)"),
    "greater_than_equal": N_("doit être supérieur ou égal à {ge}"),
    "greater_than": N_("doit être supérieur à {gt}"),
    "less_than_equal": N_("doit être inférieur ou égal à {le}"),
    "less_than": N_("doit être inférieur à {lt}"),
    "string_type": N_("texte attendu"),
    "string_too_short": N_("au moins {min_length} caractère(s)"),
    "string_too_long": N_("au plus {max_length} caractère(s)"),
    "string_pattern_mismatch": N_("format invalide"),
    "string_unicode": N_("texte UTF-8 attendu"),
    "list_type": N_("liste attendue"),
    "too_short": N_("au moins {min_length} élément(s)"),
    "too_long": N_("au plus {max_length} élément(s)"),
    "dict_type": N_("objet JSON attendu"),
    "model_type": N_("objet JSON attendu"),
    "model_attributes_type": N_("objet JSON attendu"),
    "json_invalid": N_("JSON invalide"),
    "json_type": N_("JSON attendu"),
    "date_type": N_("date attendue (AAAA-MM-JJ)"),
    "date_parsing": N_("date attendue (AAAA-MM-JJ)"),
    "date_from_datetime_parsing": N_("date attendue (AAAA-MM-JJ)"),
    "date_from_datetime_inexact": N_("date sans heure attendue (AAAA-MM-JJ)"),
    "datetime_type": N_("date et heure attendues (ISO 8601)"),
    "datetime_parsing": N_("date et heure attendues (ISO 8601)"),
    "enum": N_("valeur non autorisée"),
    "literal_error": N_("valeur non autorisée"),
}
SECTIONS = {
    "body": N_("corps"),
    "query": N_("paramètre"),
    "path": N_("adresse"),
    "header": N_("en-tête"),
    "cookie": "cookie",
}
INVALID = N_("valeur invalide")
WHOLE_REQUEST = N_("requête")


def _is_json(request: Request) -> bool:
    value = request.headers.get("content-type")
    if not value:
        return False
    message = email.message.Message()
    message["content-type"] = value
    subtype = message.get_content_subtype()
    json_subtype = subtype == "json" or subtype.endswith("+json")
    return message.get_content_maintype() == "application" and json_subtype


def field_name(loc: Sequence[Any]) -> str:
    """``("body", "invoice_ids", 0)`` -> ``invoice_ids[0]``; the body itself -> ``corps``."""
    parts = list(loc)
    section = str(parts.pop(0)) if parts and parts[0] in SECTIONS else ""
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or gettext(SECTIONS.get(section, WHOLE_REQUEST))


def french_message(error: dict[str, Any]) -> str:
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    template = MESSAGES.get(kind)
    if template is not None:
        # In the caller's language (web/locale.py sets it for the whole request); French by default.
        template = gettext(template)
        try:
            return template.format(**ctx)
        except (KeyError, IndexError, ValueError):
            return template.split("{")[0].strip() or gettext(INVALID)
    if kind in ("value_error", "assertion_error"):
        # Our own validators raise French sentences; pydantic prefixes them in English.
        text = str(error.get("msg", ""))
        for prefix in ("Value error, ", "Assertion failed, "):
            text = text.removeprefix(prefix)
        return gettext(text) if text else gettext(INVALID)
    return gettext(INVALID)


def validation_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for error in exc.errors():
        loc = list(error.get("loc", ()))
        message = french_message(error)
        if loc == ["body"] and error.get("type") != "missing" and not _is_json(request):
            message = gettext(NOT_JSON)
        errors.append({"loc": loc, "type": error.get("type"), "message": message})
    if errors and errors[0]["message"] == gettext(NOT_JSON):
        detail = gettext(NOT_JSON)
    else:
        listed = "; ".join(f"{field_name(e['loc'])} : {e['message']}" for e in errors[:5])
        detail = (
            gettext("Données invalides — %(errors)s.") % {"errors": listed}
            if listed
            else gettext("Données invalides.")
        )
    return JSONResponse(
        {"detail": detail, "code": "invalid_input", "errors": errors},
        status_code=422,
    )


# The OpenAPI schema of that answer, replacing FastAPI's HTTPValidationError.
VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "title": "HTTPValidationError",
    "type": "object",
    "required": ["detail", "code", "errors"],
    "properties": {
        "detail": {"type": "string", "description": N_("Ce qui ne va pas, en français.")},
        "code": {"type": "string", "enum": ["invalid_input"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "type", "message"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "type": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
