"""The chaos run's verdict (bench/chaos/tally.py) on hand-made views: what counts as lost, settled
without capture, double, stuck, and when the run passes. No process is started."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bench.chaos.__main__ import parse_args
from bench.chaos.disruptions import Crashes, fault_settings
from bench.chaos.payers import PaymentRun
from bench.chaos.tally import BankView, judge
from sandbox.faults import FaultSettings


def book(status: str, held_by: str | None = None, unapplied: int = 0) -> dict[str, Any]:
    return {"status": status, "held_by": held_by, "unapplied": unapplied}


def test_a_clean_run_passes() -> None:
    runs = [PaymentRun(1, "card", "P1"), PaymentRun(2, "fatourati", "P2"), PaymentRun(3, "amanpay", "P3")]
    bank = {"P1": BankView(1, ""), "P2": BankView(0, ""), "P3": BankView(1, "")}
    api = {"P1": "succeeded", "P2": "expired", "P3": "succeeded"}
    ledger = {1: book("paid"), 2: book("unpaid"), 3: book("payment_confirmed")}
    verdict = judge(runs, bank, api, ledger)
    assert verdict.ok and verdict.figures["captured"] == 2 and verdict.figures["succeeded"] == 2
    assert verdict.line() == (
        "payments 3, captured 2, succeeded 2, lost 0, uncaptured_settled 0, double 0, stuck 0"
    )


@pytest.mark.parametrize(
    "took, status, invoice, figure",
    [
        (1, "expired", book("unpaid"), "lost"),
        (0, "succeeded", book("paid"), "uncaptured_settled"),
        (2, "succeeded", book("paid"), "double"),
        (1, "succeeded", book("paid", None, 1), "double"),  # paid and kept unapplied: counted twice
        (1, "awaiting_payer", book("in_payment", "P1"), "stuck"),  # not lost yet: still live
        (0, "expired", book("in_payment", "P1"), "stuck"),
    ],
)
def test_each_failure_is_counted(took: int, status: str, invoice: dict[str, Any], figure: str) -> None:
    verdict = judge([PaymentRun(1, "card", "P1")], {"P1": BankView(took, "")}, {"P1": status}, {1: invoice})
    assert verdict.figures[figure] == 1 and not verdict.ok and verdict.problems
    others = ("lost", "uncaptured_settled", "double", "stuck")
    assert sum(verdict.figures[name] for name in others) == 1


def test_late_money_recorded_as_unapplied_is_not_lost() -> None:
    verdict = judge(
        [PaymentRun(1, "fatourati", "P1")],
        {"P1": BankView(1, "")},
        {"P1": "expired"},
        {1: book("unpaid", None, 1)},
    )
    assert verdict.ok and verdict.unapplied == 1


def test_an_invoice_without_its_attempt_fails_the_run() -> None:
    verdict = judge([PaymentRun(1, "card")], {}, {}, {1: book("in_payment")})
    assert verdict.unstarted == 1 and not verdict.ok


def test_fault_settings_are_valid_sandbox_settings_at_every_rate() -> None:
    for rate in (0.0, 0.3, 1.0):
        settings = FaultSettings.model_validate(fault_settings(rate, 7))
        assert settings.active == (rate > 0)


def test_postgres_restart_needs_the_ledger_on_postgres() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--restart-postgres"])
    assert parse_args([]).restart_postgres is False and parse_args([]).postgres is None


@pytest.mark.parametrize("postgres", [None, "true"])
def test_every_part_goes_down_while_payments_are_started_whatever_the_draws(postgres: str | None) -> None:
    """The crash schedule alone (no process): over many seeds, both worker processes and Temporal (and
    PostgreSQL when asked) each go down once within the paying time, then crashes go on at random."""
    parts = {"worker", "worker-activities", "temporal"} | ({"postgres"} if postgres else set())
    for seed in range(300):
        crashes = Crashes(None, random.Random(seed), 20, 5, postgres, within=75)  # type: ignore[arg-type]
        elapsed, taken = 0.0, []
        while elapsed < 200:
            gap, part = crashes.next_crash(elapsed)
            elapsed += gap + 5  # the crash itself: down, then started again
            taken.append((elapsed, part))
        first = [part for _, part in taken[: len(parts)]]
        assert set(first) == parts, (seed, taken)
        assert taken[len(parts) - 1][0] <= 75 + 5, (seed, taken)
        assert {part for _, part in taken[len(parts) :]} <= parts
