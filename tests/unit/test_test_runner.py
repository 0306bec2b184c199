"""`make test`'s runner (tests/support/concurrently.py): every part runs to its end, any failure
fails the whole, and a failed part's last lines are repeated under the summaries, where a CI report
that keeps only the end of the output still shows them."""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.concurrently import Part, run

ROOT = Path(__file__).resolve().parents[2]


def test_a_failed_part_fails_the_run_and_its_last_lines_are_repeated_at_the_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = Part("chaos", "echo setting up; echo 'lost 1, stuck 0'; exit 3", tmp_path / "chaos.log")
    passing = Part("lint", "echo all clean", tmp_path / "lint.log")

    assert run([failing, passing], jobs=2) == 1

    out = capsys.readouterr().out
    summaries = out.index("make test: chaos: FAILED (exit 3)")
    recap = out.rindex("----- last 2 lines of chaos")
    assert recap < summaries
    assert "lost 1, stuck 0" in out[recap:summaries]
    assert "----- last" not in out[out.index("make test: chaos: FAILED") :]
    assert "make test: lint: ok" in out
    assert "last 1 lines of lint" not in out


def test_every_part_passing_passes_the_run_without_a_recap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = [Part(name, f"echo {name}", tmp_path / f"{name}.log") for name in ("SQLite", "lint")]

    assert run(parts, jobs=1) == 0

    assert "----- last" not in capsys.readouterr().out


def test_make_test_runs_every_suite_on_both_databases_and_the_page_audits_once() -> None:
    """Both databases get every test that touches one; the page audits (screenshots, axe-core), the
    phone width and the modules that touch no database run in the SQLite suite."""
    dry = subprocess.run(
        ["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True, env=_without_make_vars()
    ).stdout
    parts = dict(re.findall(r'"([A-Za-z]+-[a-z]+)=([^"]+)"', dry))
    for suite in ("browser", "integration", "rest"):
        sqlite, postgresql = parts[f"SQLite-{suite}"], parts[f"PostgreSQL-{suite}"]
        assert "PORTNET_TEST_DATABASE=postgresql" in postgresql and "PORTNET_TEST_DATABASE" not in sqlite
        sqlite_args = sqlite.split(" -m pytest ")[1].split()
        postgresql_args = postgresql.split(" -m pytest ")[1].split()
        # PostgreSQL leaves out only the modules that touch no database (SUITE_NO_DATABASE).
        left_out = [arg for arg in postgresql_args if arg not in sqlite_args]
        assert [arg for arg in postgresql_args if arg in sqlite_args] == sqlite_args
        assert all(arg.startswith("--ignore=") for arg in left_out)
        if suite != "rest":
            assert left_out == []
    no_database = [arg.removeprefix("--ignore=") for arg in left_out]
    assert "tests/workflows/test_replay.py" in no_database
    for module in no_database:
        assert (ROOT / module).is_file(), module
        assert touches_a_database(ROOT / module) == [], module
    audits_off = [name for name, command in parts.items() if "PORTNET_BROWSER_AUDITS=0" in command]
    assert audits_off == ["PostgreSQL-browser"]
    # The phone width (layout and its audits) in the auditing suite; the desktop width in both.
    one_width = {name: command for name, command in parts.items() if "PORTNET_BROWSER_VIEWPORTS" in command}
    assert list(one_width) == ["PostgreSQL-browser"]
    assert "PORTNET_BROWSER_VIEWPORTS=desktop " in one_width["PostgreSQL-browser"]


# What a module that touches a database imports or asks for (tests/conftest.py's fixtures and the
# stacks of tests/support): any of these keeps it in both suites.
DATABASE_IMPORTS = (
    "sqlmodel",
    "sqlalchemy",
    "portnet.db",
    "portnet.models",
    "portnet.seed",
    "activities.ledger",
    "tests.support.api",
    "tests.support.databases",
    "tests.support.ledger",
    "tests.support.workers",
    "tests.support.browser",
)
DATABASE_FIXTURES = {
    "db", "make_invoice", "database_url", "sandbox_server", "time_env", "dev_env", "stack", "client",
    "ledger", "sataa", "aska", "anonymous", "scenario", "handle",
}  # fmt: skip


def touches_a_database(path: Path) -> list[str]:
    """The imports and fixture parameters of ``path`` that reach a database, if any."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom | ast.Import):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if isinstance(node, ast.ImportFrom) and node.module in ("portnet", "tests.support"):
                names = [f"{node.module}.{a.name}" for a in node.names]
            found += [n for n in names if n.startswith(DATABASE_IMPORTS)]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found += [a.arg for a in node.args.args if a.arg in DATABASE_FIXTURES]
    return found


def test_the_database_check_sees_a_session_and_a_ledger_fixture(tmp_path: Path) -> None:
    module = tmp_path / "test_x.py"
    module.write_text("from sqlmodel import Session\nfrom portnet import db\ndef test_a(make_invoice): ...\n")
    assert touches_a_database(module) == ["sqlmodel", "portnet.db", "make_invoice"]
    module.write_text("from portnet.money import parse\ndef test_a(tmp_path): ...\n")
    assert touches_a_database(module) == []


def _without_make_vars() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
