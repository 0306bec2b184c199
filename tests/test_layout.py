"""The layout holds: no import cycle, between modules or between the project's packages.

Imports run one way: web -> workflows -> activities -> portnet (the ledger); the sandboxes talk to us
over HTTP. The graph is built from the source (the AST), so it counts every import: at module level,
inside functions, and under ``if TYPE_CHECKING:`` (a type-only import is still a dependency a
newcomer must follow, and a cycle hidden there is one ``from __future__`` change away from breaking).

How an import becomes an edge: ``import a.b`` depends on ``a.b``; ``from a.b import c`` depends on
``a.b.c`` when that is a module of ours, else on ``a.b`` (the module that defines ``c``). Importing a
package's module does not count as depending on the package's ``__init__`` (Python runs it first, but
that is what lets a package's ``__init__`` hold a registry of its modules).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("portnet", "workflows", "activities", "web", "sandbox")
SCRIPTS = ("worker",)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files(root: Path) -> dict[str, Path]:
    files = {module_name(path, root): path for package in PACKAGES for path in (root / package).rglob("*.py")}
    files.update({script: root / f"{script}.py" for script in SCRIPTS})
    return files


def imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, str | None]]:
    """(module, name or None) for every import anywhere in the tree, relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield base, alias.name


def ours(name: str, modules: set[str]) -> str | None:
    """The module of ours ``name`` is, or is in (its longest known prefix); None for a library."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def dependencies(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
    found: set[str] = set()
    for base, name in imported_names(tree, module, is_package):
        target = f"{base}.{name}" if name and f"{base}.{name}" in modules else ours(base, modules)
        if target is not None and target != module:
            found.add(target)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = project_files(root)
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = dependencies(tree, module, path.name == "__init__.py", modules)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def path_through(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete loop inside a cycle, to name in the failure: a -> b -> ... -> a."""
    members = set(component)
    start = component[0]
    trail, seen = [start], {start}
    while True:
        step = next(t for t in sorted(graph[trail[-1]]) if t in members)
        if step in seen:
            return [*trail[trail.index(step) :], step]
        trail.append(step)
        seen.add(step)


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    top: dict[str, set[str]] = {}
    for module, targets in graph.items():
        here = module.split(".")[0]
        top.setdefault(here, set()).update(t.split(".")[0] for t in targets if t.split(".")[0] != here)
    return top


def test_no_import_cycle_between_modules() -> None:
    graph = import_graph()
    loops = [" -> ".join(path_through(graph, component)) for component in cycles(graph)]
    assert loops == [], "import cycles:\n" + "\n".join(loops)


def test_no_import_cycle_between_packages() -> None:
    packages = package_graph(import_graph())
    loops = [" -> ".join(path_through(packages, component)) for component in cycles(packages)]
    assert loops == [], "packages importing each other:\n" + "\n".join(loops)


def test_the_check_sees_cycles_through_type_checking_and_relative_imports() -> None:
    """The detector itself: a cycle only visible under TYPE_CHECKING, through a relative import, is found."""
    first = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .second import B\n")
    second = ast.parse("def f():\n    from pkg import first\n")
    modules = {"pkg", "pkg.first", "pkg.second"}
    graph = {
        "pkg": set(),
        "pkg.first": dependencies(first, "pkg.first", False, modules),
        "pkg.second": dependencies(second, "pkg.second", False, modules),
    }
    assert cycles(graph) == [["pkg.first", "pkg.second"]]
    assert path_through(graph, ["pkg.first", "pkg.second"]) == ["pkg.first", "pkg.second", "pkg.first"]
    assert cycles(package_graph({"a.x": {"b.y"}, "b.y": {"a.z"}, "a.z": set()})) == [["a", "b"]]
