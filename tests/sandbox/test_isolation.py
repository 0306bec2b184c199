"""The sandboxes stand for other companies: they may share our settings, never our protocol code."""

from __future__ import annotations

import ast
from pathlib import Path

import sandbox

ALLOWED = {"portnet.settings"}
OURS = ("portnet", "web", "workflows", "activities", "worker")


def test_sandbox_imports_nothing_of_ours_but_settings() -> None:
    offenders = []
    for path in Path(sandbox.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in OURS and name not in ALLOWED:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
