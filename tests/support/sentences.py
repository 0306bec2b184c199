"""The French sentences a module's code writes for people: string constants that read like French
(an accent, or words ending with a full stop), outside docstrings, logs, f-strings' pieces and the
Temporal Web UI's activity summaries."""

from __future__ import annotations

import ast
import re
from pathlib import Path

FRENCH = re.compile(r"[éèàçêâîôûÉÈÀ]|^[A-Z][a-z]+ [a-z]+ .*[.:]$")


def french_sentences(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        parent = parents.get(node)
        if isinstance(parent, ast.Expr | ast.JoinedStr):  # docstrings, pieces of f-strings
            continue
        if isinstance(parent, ast.Call) and re.search(r"(log|logger)\.\w+$", ast.unparse(parent.func)):
            continue
        if isinstance(parent, ast.Compare):
            continue
        if isinstance(parent, ast.keyword) and parent.arg in ("summary", "static_summary", "static_details"):
            continue  # the Temporal Web UI's texts: finance's tool, French by design
        if FRENCH.search(node.value) and " " in node.value.strip():
            found.add(node.value)
    return found
