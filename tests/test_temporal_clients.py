"""Every Temporal client of the system carries the payload codec, or the parts cannot read each other.

A client connected without it would write clear payloads (personal data back in the histories) and
fail to read the sealed ones, so each ``Client.connect`` and each test environment must pass
``data_converter=`` (built by portnet.temporal_codec.data_converter). Checked on the source, so a new
client cannot be added without it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from portnet.settings import ROOT

# Where Temporal clients are made: the apps, the launcher, the benchmarks, the tests.
SOURCES = ["worker.py", "web", "portnet", "bench", "tests", "activities", "workflows", "sandbox"]
CLIENT_FACTORIES = {
    ("Client", "connect"),
    ("WorkflowEnvironment", "start_local"),
    ("WorkflowEnvironment", "start_time_skipping"),
    ("WorkflowEnvironment", "start_time_skipping_v2"),
}


def python_files() -> list[Path]:
    files: list[Path] = []
    for name in SOURCES:
        path = ROOT / name
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return [f for f in files if "migrations" not in f.parts]


def client_calls(tree: ast.AST) -> list[ast.Call]:
    calls = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and (node.func.value.id, node.func.attr) in CLIENT_FACTORIES
        ):
            calls.append(node)
    return calls


def test_every_temporal_client_is_built_with_the_payload_codec() -> None:
    found, missing = [], []
    for path in python_files():
        for call in client_calls(ast.parse(path.read_text(), filename=str(path))):
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            found.append(where)
            if not any(keyword.arg == "data_converter" for keyword in call.keywords):
                missing.append(where)
    assert missing == [], f"Temporal clients without data_converter=: {missing}"
    # The check looks where the clients are: the portal, the worker, the launcher, bench, test servers.
    places = {where.split(":")[0] for where in found}
    assert {"worker.py", "web/app.py", "portnet/launcher.py", "bench/bare.py", "bench/stack.py",
            "tests/conftest.py"} <= places, places  # fmt: skip
