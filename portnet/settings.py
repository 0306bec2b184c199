"""Every knob of the system, read from the environment.

The environment names are the field names upper-cased (``DATABASE_URL``, ``CMI_STORE_KEY``...).
docker-compose.yml sets the same names; a test checks that the two agree, so a setting cannot be
renamed on one side only.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import PositiveInt, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    # Production unless told otherwise: `make run`, the tests and the benchmarks say `development`.
    # Production refuses unsafe defaults (public secrets, the sandboxes, insecure cookies).
    portnet_env: Literal["development", "production"] = "production"

    # Ledger database: SQLite file by default, PostgreSQL at scale.
    database_url: str = f"sqlite:///{VAR / 'portnet.db'}"
    # Connections one process keeps (pool size) and may open on top under load (overflow); a request
    # or an activity that finds them all taken waits this long, then fails. Size them for the
    # process's concurrency: the portal's thread pool (40 threads) and the worker's activity threads
    # (32). For PostgreSQL, every replica's size + overflow must fit in the server's max_connections
    # (docker-compose.yml sets them per service).
    database_pool_size: PositiveInt = 10
    database_max_overflow: int = 40
    database_pool_timeout_seconds: PositiveInt = 10

    # Temporal.
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "portnet-payments"
    # Worker Deployment Versioning (both set, or neither): the worker polls as this deployment
    # version, and payment attempts stay pinned to the version that started them, so that a release
    # that changes workflow code a lot never replays old attempts on new code. Empty in development
    # (small changes go under ``workflow.patched``; the replay test proves them).
    # On SIGTERM the worker stops polling and gives running activities this long to finish (compose's
    # stop_grace_period leaves it a few seconds more).
    worker_shutdown_grace_seconds: PositiveInt = 25
    # Most task pollers the worker keeps per kind (workflow tasks, activity tasks); the server's
    # feedback scales them between 1 and this (worker.build_worker).
    worker_max_pollers: PositiveInt = 100
    temporal_deployment_name: str = ""
    temporal_build_id: str = ""
    # Where finance staff open a workflow; built into back-office links, so a remote UI works too.
    temporal_ui_url: str = "http://127.0.0.1:8233"
    # AES-256-GCM keys sealing every Temporal payload (portnet/temporal_codec.py): "kid:base64key,..."
    # (32 random bytes each), the first encrypts, the others still decrypt. Required in production;
    # in development, empty means a key derived from SECRET_KEY.
    temporal_payload_keys: str = ""

    # Operations (README "Operations"). The worker exports the Temporal SDK's metrics and its own
    # (attempts, partner calls, e-mails) in Prometheus format here; "" turns the endpoint off.
    worker_metrics_address: str = "127.0.0.1:9464"
    # The portal's GET /metrics answers loopback clients, and in production anyone else only with
    # "Authorization: Bearer <METRICS_TOKEN>" (32 characters or more); empty: loopback only.
    metrics_token: str = ""
    # Traces go over OTLP/HTTP (e.g. http://otel-collector:4318) when set; empty: no tracing at all.
    otel_exporter_otlp_endpoint: str = ""
    # One line per record: JSON (production's default) or readable text (development's default).
    log_format: Literal["json", "text"] = "json"

    # The portal.
    public_base_url: str = "http://127.0.0.1:8000"
    secret_key: str = "dev-only-secret-change-me"  # noqa: S105 - development default; production refuses it
    # Both follow PORTNET_ENV when not set: secure cookies and no sandboxes in production, the
    # opposite in development (plain http on 127.0.0.1). Production refuses the unsafe values.
    session_cookie_secure: bool = False
    sandbox_enabled: bool = False
    # A session ends 8 hours after login whatever happens, and after 30 minutes without a request.
    session_max_age_seconds: PositiveInt = 8 * 3600
    session_idle_timeout_seconds: PositiveInt = 30 * 60

    # Login throttling, per account and per client address (portnet/login_throttle.py): from this
    # many failures on, each further attempt waits (1 min, 5 min), then the key is locked this long.
    login_max_failures: PositiveInt = 5
    login_lock_seconds: PositiveInt = 15 * 60
    # Failures are forgotten after a successful login (account) or this long after the last one.
    login_failure_window_seconds: PositiveInt = 3600
    # The public receipt verification page (/verification/{code}, web/verification.py): each client
    # address may look up this many codes per window, then waits for the window's end (429).
    verification_lookups_per_window: PositiveInt = 30
    verification_window_seconds: PositiveInt = 60
    # Strict-Transport-Security, sent in production only (browsers ignore it over plain HTTP).
    # One year, as the HSTS preload rules ask; lower it while first moving a host to HTTPS; 0 = off.
    hsts_max_age_seconds: int = 31_536_000

    # The partner sandboxes (development only): their own process (`python -m sandbox`, started by
    # `make run`), listening where this URL says; the portal links to their pages when
    # SANDBOX_ENABLED. Their memory is a SQLite file of their own, so restarting either side loses
    # nothing.
    sandbox_base_url: str = "http://127.0.0.1:8001"
    sandbox_database_url: str = f"sqlite:///{VAR / 'sandbox.db'}"

    # CMI hosted payment page (3D_PAY_HOSTING).
    cmi_gateway_url: str = "http://127.0.0.1:8001/sandbox/cmi/fim/est3Dgate"
    cmi_client_id: str = "600000001"
    cmi_store_key: str = "SandboxStoreKey2026"
    cmi_session_timeout_seconds: int = 900
    # CMI's XML API (``/fim/api``): the order status query (ORDERHISTORY) and the capture of an
    # authorisation (PostAuth), with an API user of its own, distinct from the store key.
    cmi_api_url: str = "http://127.0.0.1:8001/sandbox/cmi/fim/api"
    cmi_api_name: str = "portnet-api"
    cmi_api_password: str = "SandboxCmiApiPassword2026"  # noqa: S105 - sandbox default; compose requires a real one
    # How long the workflow keeps the invoices held for a card payment: CMI's page timeout + margin.
    cmi_payment_deadline_seconds: int = 1200

    # Emitters (ANP, MARSA MAROC, ...) receive settlement notices and acknowledge them.
    emitter_notify_url: str = "http://127.0.0.1:8001/sandbox/emitters"
    emitter_shared_key: str = "SandboxEmitterKey2026"
    emitter_ack_deadline_seconds: int = 7 * 24 * 3600
    # The sandbox emitter acknowledges this many seconds after a notice.
    sandbox_emitter_ack_delay_seconds: float = 1.0

    # Amanpay (cash payment code at Tashilat, Amanty wallet) and Banque Populaire PayDirect.
    amanpay_base_url: str = "http://127.0.0.1:8001/sandbox/amanpay"
    amanpay_merchant_id: str = "PORTNET01"
    amanpay_secret_key: str = "SandboxAmanpayKey2026"  # noqa: S105 - sandbox default; compose requires a real one
    # How long a cash payment code stays payable at Tashilat (72 h).
    amanpay_code_ttl_seconds: int = 259200
    # How long the invoices stay held while the payer is on the Amanty page.
    amanpay_redirect_deadline_seconds: int = 1200
    paydirect_base_url: str = "http://127.0.0.1:8001/sandbox/paydirect"
    paydirect_secret_key: str = "SandboxPayDirectKey2026"  # noqa: S105 - sandbox default; compose requires a real one
    # One SMS code lives 10 min; the whole SMS code step (with resends) at most 15 min.
    paydirect_otp_ttl_seconds: int = 600
    paydirect_step_timeout_seconds: int = 900
    # The sandbox SMS gateway the PayDirect sandbox sends its codes through.
    sms_gateway_url: str = "http://127.0.0.1:8001/sandbox/sms"

    # E-mail.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "PortNet Paiements <paiements@portnet.ma>"
    # The development mail sink (it runs in the sandboxes' process) listens here.
    sandbox_smtp_port: int = 1025

    # CMI Fatourati (bill reference paid in a bank app or at an agency).
    fatourati_base_url: str = "http://127.0.0.1:8001/sandbox/fatourati/api"
    fatourati_merchant_code: str = "PORTNET"
    fatourati_store_id: str = "PN001"
    fatourati_api_key: str = "SandboxFatouratiKey2026"
    # The reference's life (the guide: 3 hours) and the reminder e-mail before it ends.
    fatourati_expiry_seconds: int = 3 * 3600
    fatourati_reminder_before_seconds: int = 1800

    # Cheque and bank transfer: how long finance has to confirm the money arrived.
    offline_payment_deadline_seconds: int = 30 * 24 * 3600
    # Who is alerted when a declared cheque or transfer was never confirmed.
    finance_alert_email: str = "finance@portnet.ma"

    # Reconciliation (workflows/reconciliation.py), a Temporal Schedule: how often it runs; how long a
    # partner's call may stay "processing" before it counts as stuck; how far past its deadline a
    # held attempt counts as overdue; how far back closed attempts are checked with their partner.
    reconciliation_interval_seconds: PositiveInt = 300
    reconciliation_stale_seconds: PositiveInt = 300
    reconciliation_grace_seconds: PositiveInt = 300
    # A live attempt waiting this long for its partner's notice is asked about too (a notice the
    # partner never delivered): Fatourati and Amanpay say "paid", the attempt settles.
    reconciliation_live_after_seconds: PositiveInt = 120
    reconciliation_lookback_seconds: PositiveInt = 7 * 24 * 3600

    # MARSA MAROC's invoicing API: invoices by terminal and customer id or by number.
    marsa_maroc_base_url: str = "http://127.0.0.1:8001/sandbox/marsa-maroc"
    marsa_maroc_api_token: str = "SandboxMarsaToken2026"  # noqa: S105 - sandbox default; compose requires a real one
    marsa_maroc_page_size: int = 10
    # One page call: a slower answer is a timeout, retried with backoff by Temporal.
    marsa_maroc_timeout_seconds: float = 10.0
    # The emitter code MARSA MAROC's invoices are filed under in our ledger.
    marsa_maroc_emitter_code: str = "611MARS001"
    # The terminals offered on "Nouvelle demande de facture": "code:Name" pairs, comma-separated.
    marsa_maroc_terminals: str = (
        "CASA:Casablanca,MOHA:Mohammedia,JORF:Jorf Lasfar,SAFI:Safi,AGAD:Agadir,TMED:Tanger Med,"
        "NADO:Nador,ALHO:Al Hoceima,LAAY:Laâyoune,DAKH:Dakhla"
    )

    @model_validator(mode="before")
    @classmethod
    def _environment_defaults(cls, data: Any) -> Any:
        """SESSION_COOKIE_SECURE, SANDBOX_ENABLED and LOG_FORMAT default to what PORTNET_ENV implies.

        An explicit value always wins (and production refuses the unsafe ones at start-up), so an
        operator who forgets them in production gets the safe behaviour, not a refusal.
        """
        if isinstance(data, dict):
            production = str(data.get("portnet_env", "production")).strip().lower() != "development"
            data.setdefault("session_cookie_secure", production)
            data.setdefault("sandbox_enabled", not production)
            data.setdefault("log_format", "json" if production else "text")
        return data

    @model_validator(mode="after")
    def _deployment_version_whole(self) -> Settings:
        if bool(self.temporal_deployment_name.strip()) != bool(self.temporal_build_id.strip()):
            raise ValueError(
                "TEMPORAL_DEPLOYMENT_NAME et TEMPORAL_BUILD_ID vont ensemble : définissez les deux ou aucun"
            )
        return self

    @property
    def is_production(self) -> bool:
        return self.portnet_env == "production"

    def marsa_terminals(self) -> list[tuple[str, str]]:
        pairs = []
        for item in self.marsa_maroc_terminals.split(","):
            code, _, name = item.strip().partition(":")
            if code.strip():
                pairs.append((code.strip(), (name or code).strip()))
        return pairs


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
