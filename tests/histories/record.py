"""Records the workflow histories of tests/histories/ from the workflow code checked out now.

    .venv/bin/python -m tests.histories.record                        # every path not recorded yet
    .venv/bin/python -m tests.histories.record --dev-server           # the same on the dev server
    .venv/bin/python -m tests.histories.record --version 2027-03      # a new set next to the old one
    .venv/bin/python -m tests.histories.record payment_card_approved  # some paths only

Each path of tests/histories/manifest.py is played by its scenario (tests/histories/scenarios/) on
the time-skipping test server (or, with --dev-server, on the Temporal dev server for the paths of
manifest.DEV_SERVER_PATHS), with the workflows registered as worker.py registers them and the
activities replaced by the fakes of tests/histories/world.py under the same names. A history is
checked against its manifest entry before it is written. Existing files are never overwritten
unless --overwrite is given: see tests/histories/README.md for when that is allowed (almost never).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from portnet.search_attributes import SEARCH_ATTRIBUTES
from tests.histories.history_files import data_converter, facts, mismatches
from tests.histories.manifest import BY_NAME, DEV_SERVER, DEV_SERVER_PATHS, HISTORIES, PATHS
from tests.histories.recording import Recording, recording_settings
from tests.histories.scenarios import SCENARIOS
from tests.histories.world import World
from worker import ACTIVITIES, WORKFLOWS

SEARCH_ATTRIBUTE_TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
}


class RecordingRefused(Exception):
    pass


def activity_name(fn: object) -> str:
    return str(getattr(fn, "__temporal_activity_definition").name)


def check_fakes_cover_the_worker(world: World) -> None:
    """A fake per registered activity, no more: a new activity must get its fake before recording."""
    registered = {activity_name(a) for a in ACTIVITIES}
    faked = {activity_name(a) for a in world.activities()}
    if registered != faked:
        raise RecordingRefused(
            f"fakes differ from worker.ACTIVITIES: missing {sorted(registered - faked)}, "
            f"unknown {sorted(faked - registered)}"
        )


def file_for(name: str, folder: Path, tag: str | None) -> Path:
    """``<name>.json``, or ``<name>.<tag>.json`` for another version or the dev server's recording."""
    return folder / (f"{name}.{tag}.json" if tag else f"{name}.json")


async def register_search_attributes(env: WorkflowEnvironment) -> None:
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                name: SEARCH_ATTRIBUTE_TYPES[kind] for name, kind in SEARCH_ATTRIBUTES.items()
            },
        )
    )


async def record(
    env: WorkflowEnvironment,
    names: Iterable[str],
    folder: Path = HISTORIES,
    tag: str | None = None,
    overwrite: bool = False,
    task_queue: str | None = None,
    log: bool = True,
) -> list[Path]:
    """Plays the named paths one after the other (time skipping is global) and writes their histories."""
    names = list(names)
    unknown = [n for n in names if n not in BY_NAME or n not in SCENARIOS]
    if unknown:
        raise RecordingRefused(f"no manifest entry or scenario for {unknown}")
    targets = {name: file_for(name, folder, tag) for name in names}
    existing = [str(f) for f in targets.values() if f.exists()]
    if existing and not overwrite:
        raise RecordingRefused(f"already recorded (kept as they are): {existing}")
    settings = recording_settings()
    world = World(settings)
    check_fakes_cover_the_worker(world)
    recording = Recording(env, world, settings, task_queue or settings.temporal_task_queue)
    written: list[Path] = []
    async with Worker(
        env.client, task_queue=recording.task_queue, workflows=WORKFLOWS, activities=world.activities()
    ):
        for name in names:
            path = BY_NAME[name]
            handle = await SCENARIOS[name](recording, path)
            await recording.finish(handle)
            history = await handle.fetch_history()
            problems = await mismatches(path, facts(history))
            if problems:
                raise RecordingRefused(f"{name}: {'; '.join(problems)}")
            targets[name].write_text(history.to_json() + "\n", encoding="utf-8")
            written.append(targets[name])
            if log:
                print(f"recorded {targets[name].name} ({len(history.events)} events)")
    return written


async def start_server(dev_server: bool) -> WorkflowEnvironment:
    binaries = Path(sys.prefix) / "bin"
    if dev_server:
        makers: dict[str, Callable[[str], SearchAttributeKey[Any]]] = {
            "Keyword": SearchAttributeKey.for_keyword,
            "KeywordList": SearchAttributeKey.for_keyword_list,
            "Double": SearchAttributeKey.for_float,
        }
        return await WorkflowEnvironment.start_local(
            data_converter=data_converter(),
            dev_server_existing_path=str(binaries / "temporal"),
            search_attributes=[makers[kind](name) for name, kind in SEARCH_ATTRIBUTES.items()],
            dev_server_extra_args=["--log-level", "error"],
        )
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(), test_server_existing_path=str(binaries / "temporal-test-server")
    )
    await register_search_attributes(env)
    return env


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="paths to record (default: those without a file)")
    parser.add_argument("--version", help="record <name>.<version>.json next to the existing files")
    parser.add_argument(
        "--dev-server", action="store_true", help=f"record <name>[.<version>].{DEV_SERVER}.json"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing files (see README.md)")
    args = parser.parse_args(argv)
    tag = ".".join(part for part in (args.version, DEV_SERVER if args.dev_server else None) if part) or None
    candidates = DEV_SERVER_PATHS if args.dev_server else tuple(p.name for p in PATHS)
    names = args.names or [
        name for name in candidates if args.overwrite or not file_for(name, HISTORIES, tag).exists()
    ]
    if not names:
        print("every path has its history; nothing to record")
        return 0
    env = await start_server(args.dev_server)
    try:
        await record(env, names, tag=tag, overwrite=args.overwrite)
    except RecordingRefused as refused:
        print(f"nothing more recorded: {refused}", file=sys.stderr)
        return 1
    finally:
        await env.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
