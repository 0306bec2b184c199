"""The sandboxes stand for other companies: they may share our settings, never our protocol code, and
the portal neither serves them nor imports them; it only links to them, in development."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import yaml

import sandbox
from portnet.settings import ROOT, Settings
from web.app import create_app
from web.channels.base import sandbox_pages

ALLOWED = {"portnet.settings"}
OURS = ("portnet", "web", "workflows", "activities", "worker")


def imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_sandbox_imports_nothing_of_ours_but_settings() -> None:
    offenders = []
    for path in Path(sandbox.__file__).parent.rglob("*.py"):
        for name in imported_modules(path):
            if name.split(".")[0] in OURS and name not in ALLOWED:
                offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_nothing_of_ours_imports_the_sandboxes() -> None:
    """They are another process: the portal, the worker and the ledger reach them over HTTP only."""
    offenders = []
    for folder in ("web", "workflows", "activities", "portnet"):
        for path in (ROOT / folder).rglob("*.py"):
            offenders += [f"{path}: {n}" for n in imported_modules(path) if n.split(".")[0] == "sandbox"]
    assert offenders == []


async def test_the_portal_serves_no_sandbox_in_development_either(database_url: str) -> None:
    app = create_app(Settings.model_validate({"portnet_env": "development", "database_url": database_url}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as http:
        for path in ("/sandbox/", "/sandbox/cmi/", "/sandbox/mail", "/sandbox/emitters/"):
            assert (await http.get(path)).status_code == 404, path


def test_the_portal_links_to_the_sandboxes_where_they_run_when_enabled() -> None:
    development = Settings.model_validate(
        {"portnet_env": "development", "sandbox_base_url": "http://127.0.0.1:9001/"}
    )
    assert sandbox_pages(development) == "http://127.0.0.1:9001/sandbox"
    assert sandbox_pages(development.model_copy(update={"sandbox_enabled": False})) == ""
    assert sandbox_pages(Settings.model_validate({"portnet_env": "production"})) == ""
    # Out of the box (the test run sets its own ports), the partner URLs point at the sandboxes' port.
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    assert defaults["sandbox_base_url"] == "http://127.0.0.1:8001"
    assert defaults["public_base_url"] == "http://127.0.0.1:8000"
    for name in (
        "cmi_gateway_url",
        "emitter_notify_url",
        "amanpay_base_url",
        "paydirect_base_url",
        "sms_gateway_url",
        "fatourati_base_url",
        "marsa_maroc_base_url",
    ):
        assert defaults[name].startswith("http://127.0.0.1:8001/sandbox/"), name


def test_production_runs_no_sandbox() -> None:
    """docker-compose.yml (production) has no sandbox service and no service starting one."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        command = service.get("command", "")
        text = command if isinstance(command, str) else " ".join(map(str, command))
        assert "sandbox" not in name and "sandbox" not in text, name
