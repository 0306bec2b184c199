"""The worker's two processes wherever the system is started on one machine: `make run`
(portnet/launcher.py), the end-to-end benchmark (bench/stack.py) and the chaos run (bench/chaos),
which must crash and bring back each of them. No process is started."""

from __future__ import annotations

import random
from pathlib import Path

from bench.chaos.disruptions import Crashes
from bench.chaos.stack import PARTS, ChaosStack
from portnet.launcher import activities_metrics_address, worker_commands
from worker import ROLES


def test_make_run_starts_one_worker_per_role_on_the_same_script() -> None:
    commands = worker_commands("/venv/bin/python")
    assert commands == {
        "worker": ["/venv/bin/python", "worker.py", "--role", "workflows"],
        "worker-activities": ["/venv/bin/python", "worker.py", "--role", "activities"],
    }
    assert {command[-1] for command in commands.values()} == set(ROLES) - {"all"}


def test_the_activities_worker_serves_its_metrics_on_the_next_port() -> None:
    assert activities_metrics_address("127.0.0.1:9464") == "127.0.0.1:9465"
    assert activities_metrics_address("0.0.0.0:9464") == "0.0.0.0:9465"  # noqa: S104 - a listen address
    assert activities_metrics_address("") == ""
    assert activities_metrics_address("  ") == ""


def test_the_chaos_run_starts_and_crashes_both_worker_processes(tmp_path: Path) -> None:
    stack = ChaosStack.prepare(tmp_path, database_url=None)
    assert set(PARTS) == set(stack.commands)
    assert stack.commands["worker"][-2:] == ["--role", "workflows"]
    assert stack.commands["worker-activities"][-2:] == ["--role", "activities"]
    crashes = Crashes(stack, random.Random(1), mean_gap=10.0, max_down=2.0, postgres_restart=None, within=75)
    targets = crashes._targets()
    assert {"worker", "worker-activities"} <= set(targets)
    # The worker (either process) still crashes twice as often as the server.
    assert targets.count("temporal") == 1 and len(targets) == 3
