"""`make test`'s runner (tests/support/concurrently.py): every part runs to its end, any failure
fails the whole, and a failed part's last lines are repeated under the summaries, where a CI report
that keeps only the end of the output still shows them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.concurrently import Part, run


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
    assert "----- last" not in out[out.index("make test: chaos: FAILED"):]
    assert "make test: lint: ok" in out
    assert "last 1 lines of lint" not in out


def test_every_part_passing_passes_the_run_without_a_recap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = [Part(name, f"echo {name}", tmp_path / f"{name}.log") for name in ("SQLite", "lint")]

    assert run(parts, jobs=1) == 0

    assert "----- last" not in capsys.readouterr().out
