"""The layout holds: no import cycle, between modules or between the project's packages; small
modules; one file per channel in every layer; names from the domain.

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
import re
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


# --------------------------------------------------------------------------------- module size

MAX_MODULE_LINES = 450
SKIPPED_DIRS = {".venv", ".git", "__pycache__", "node_modules", "var", ".mypy_cache", ".ruff_cache",
                ".pytest_cache", ".hypothesis", "build", "dist", "results"}  # fmt: skip


def our_files(root: Path = ROOT) -> Iterator[Path]:
    """Every file of the project (not the virtualenv, caches, run-time data or build output)."""
    for path in sorted(root.iterdir()):
        if path.name in SKIPPED_DIRS or path.name.endswith(".egg-info"):
            continue
        if path.is_dir():
            yield from (
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and not SKIPPED_DIRS & set(p.relative_to(root).parts)
            )
        elif path.is_file():
            yield path


def test_no_module_over_450_lines_outside_tests_and_migrations() -> None:
    """A module says one thing; past 450 lines it says several (split it, named for what each holds)."""
    too_long = []
    for path in our_files():
        relative = path.relative_to(ROOT).as_posix()
        if path.suffix != ".py" or relative.startswith(("tests/", "portnet/migrations/")):
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{relative}: {lines} lines")
    assert too_long == [], "modules over 450 lines:\n" + "\n".join(too_long)


# --------------------------------------------------------------------------- one file per channel

# The payment channels by their file name, the same in every layer.
CHANNEL_FILES = ("cmi_card", "fatourati", "amanpay", "paydirect", "cheque_transfer")
LAYERS = ("workflows/channels", "activities", "web/channels", "sandbox")
# A channel without a partner to imitate has no sandbox: say why here, and nowhere else.
NO_SANDBOX = {
    "cheque_transfer": "no partner system: the money reaches PORTNET's bank account and finance confirms "
    "it by hand in the back-office (web/pages/finance.py)",
}


def named_in(folder: Path, name: str) -> bool:
    """A module ``name.py`` or a package ``name/`` in ``folder``."""
    return (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file()


def test_every_channel_has_its_file_in_every_layer() -> None:
    missing = [
        f"{layer}/{name}"
        for layer in LAYERS
        for name in CHANNEL_FILES
        if not named_in(ROOT / layer, name) and not (layer == "sandbox" and name in NO_SANDBOX)
    ]
    assert missing == [], "channels without their file: " + ", ".join(missing)
    stale = [name for name in NO_SANDBOX if named_in(ROOT / "sandbox", name)]
    assert stale == [], f"{stale} now have a sandbox: remove them from NO_SANDBOX"
    tests = {path.stem for path in (ROOT / "tests").rglob("test_*.py")}
    untested = [name for name in CHANNEL_FILES if f"test_{name}" not in tests]
    assert untested == [], f"channels without a test module named for them: {untested}"


def test_the_registries_list_the_same_channels() -> None:
    """Each layer's registry has one line per channel, each pointing at the channel's own module."""
    from activities import cheque_transfer  # noqa: F401 - the activities' registry imports them all
    from web.channels import WEB_CHANNELS
    from workflows.channels import CHANNELS

    assert [web.name for web in WEB_CHANNELS] == list(CHANNEL_FILES)
    workflow_modules = {cls.__module__.rsplit(".", 1)[-1] for cls in CHANNELS.values()}
    assert workflow_modules == set(CHANNEL_FILES)
    web_modules = {type(web).__module__.rsplit(".", 1)[-1] for web in WEB_CHANNELS}
    assert web_modules == set(CHANNEL_FILES)
    covered = {channel.value for web in WEB_CHANNELS for channel in web.channels}
    assert covered == set(CHANNELS), "a channel offered on the web without its workflow, or the reverse"


# ------------------------------------------------------------------------------- domain names

# Words that name the order in which things were built, not what they are. Spelled in two pieces so
# that this file does not match itself.
BUILD_ORDER_WORDS = re.compile("iss" + r"ue[ _-]?\d|" + "found" + "ation", re.IGNORECASE)
TEXT_SUFFIXES = {
    ".py",
    ".html",
    ".css",
    ".js",
    ".md",
    ".toml",
    ".yml",
    ".yaml",
    ".ini",
    ".cfg",
    ".txt",
    ".sh",
}
TEXT_NAMES = {"Makefile", "Dockerfile", "run", ".gitignore", ".dockerignore"}
# Kept as they are: the revision id databases recorded (its file is named for what it holds), a list
# of common passwords (data, in the words people use), and recorded workflow histories.
RECORDED_REVISION = "0004_" + "iss" + "ue4"
NOT_NAMES = {"portnet/common_passwords.txt"}


def test_no_build_order_names_in_code_files_css_templates_or_readme() -> None:
    found = []
    for path in our_files():
        relative = path.relative_to(ROOT).as_posix()
        if BUILD_ORDER_WORDS.search(relative):
            found.append(f"{relative}: file name")
        if relative in NOT_NAMES or (path.suffix not in TEXT_SUFFIXES and path.name not in TEXT_NAMES):
            continue
        text = path.read_text(encoding="utf-8", errors="replace").replace(RECORDED_REVISION, "")
        for number, line in enumerate(text.splitlines(), 1):
            if BUILD_ORDER_WORDS.search(line):
                found.append(f"{relative}:{number}: {line.strip()[:100]}")
    assert found == [], "names that say when, not what:\n" + "\n".join(found)


def test_test_modules_share_helpers_through_tests_support_only() -> None:
    """A test module imports no other test module: shared helpers live in tests/support/."""
    offenders = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        module = module_name(path, ROOT)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for imported, name in imported_names(tree, module, is_package=False):
            target = f"{imported}.{name}" if name else imported
            if re.search(r"(^|\.)test_\w+$", imported) or re.search(r"(^|\.)test_\w+$", target):
                offenders.append(f"{module} imports {target}")
    assert offenders == []
