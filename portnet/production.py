"""What production refuses: public default secrets, short secrets, insecure cookies, the sandboxes.

Every secret the system holds is listed once, in :data:`SECRET_SETTINGS`; the portal
(``web.app.create_app``) and the worker (``worker.py``) both call :func:`refuse_unsafe_production`
before they do anything else, and the compose test checks that docker-compose.yml requires each of
them. Adding a secret setting is one line here.

The development defaults are in the public repository, so in production each of them is as good as
no secret at all: a signing key anyone can read lets anyone forge partner messages and sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from portnet.settings import Settings
from portnet.temporal_codec import SETTING as PAYLOAD_KEYS_SETTING
from portnet.temporal_codec import PayloadKeyError, parse_payload_keys

# Long enough that guessing is hopeless and that a placeholder like "changeme" cannot pass.
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class SecretSetting:
    """A setting that must hold a real secret in production.

    ``needed_when`` limits the rule to configurations that use the secret (an SMTP password only
    matters when an SMTP user name is set).
    """

    name: str
    needed_when: Callable[[Settings], bool] | None = None

    @property
    def variable(self) -> str:
        return self.name.upper()

    def needed(self, settings: Settings) -> bool:
        return self.needed_when is None or self.needed_when(settings)


SECRET_SETTINGS: tuple[SecretSetting, ...] = (
    SecretSetting("secret_key"),
    SecretSetting("cmi_store_key"),
    SecretSetting("cmi_api_password"),
    SecretSetting("emitter_shared_key"),
    SecretSetting("amanpay_secret_key"),
    SecretSetting("paydirect_secret_key"),
    SecretSetting("fatourati_api_key"),
    SecretSetting("marsa_maroc_api_token"),
    SecretSetting("smtp_password", needed_when=lambda s: bool(s.smtp_username.strip())),
)


class UnsafeProductionSettings(SystemExit):
    """Raised at start-up: uncaught, it prints the message and exits with status 1, no traceback."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(refusal_message(problems))


def _default_of(name: str) -> object:
    return Settings.model_fields[name].default


def production_problems(settings: Settings) -> list[str]:
    """Every reason not to start in production, one line per variable to set; empty in development."""
    if not settings.is_production:
        return []
    problems: list[str] = []
    for secret in SECRET_SETTINGS:
        if not secret.needed(settings):
            continue
        value = getattr(settings, secret.name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{secret.variable} : absent / not set")
        elif value == _default_of(secret.name):
            problems.append(
                f"{secret.variable} : valeur publique de développement / public development default"
            )
        elif len(value) < MIN_SECRET_LENGTH:
            problems.append(
                f"{secret.variable} : moins de {MIN_SECRET_LENGTH} caractères / shorter than "
                f"{MIN_SECRET_LENGTH} characters"
            )
    problems += _payload_key_problems(settings)
    if not settings.session_cookie_secure:
        problems.append("SESSION_COOKIE_SECURE : doit valoir true / must be true (HTTPS only)")
    if settings.sandbox_enabled:
        problems.append("SANDBOX_ENABLED : doit valoir false / must be false (no partner sandboxes)")
    return problems


def _payload_key_problems(settings: Settings) -> list[str]:
    """The Temporal payload codec's keys (portnet/temporal_codec.py): a key list, not one secret."""
    try:
        keys = parse_payload_keys(settings.temporal_payload_keys)
    except PayloadKeyError as bad:
        return [f"{PAYLOAD_KEYS_SETTING} : {bad}"]
    if not keys:
        return [
            f"{PAYLOAD_KEYS_SETTING} : absent / not set "
            "(KEY_ID:BASE64 of 32 random bytes, the current key first)"
        ]
    return []


def refusal_message(problems: list[str]) -> str:
    lines = "\n".join(f"  - {problem}" for problem in problems)
    return (
        "PortNet refuse de démarrer en production (PORTNET_ENV=production) ; corrigez ces variables :\n"
        "PortNet refuses to start in production; set these variables:\n"
        f"{lines}\n"
        f"Secrets: random values of at least {MIN_SECRET_LENGTH} characters, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`. "
        "For a local run, PORTNET_ENV=development."
    )


def refuse_unsafe_production(settings: Settings) -> None:
    """Stops the process (see :class:`UnsafeProductionSettings`) when production would be unsafe."""
    problems = production_problems(settings)
    if problems:
        raise UnsafeProductionSettings(problems)
