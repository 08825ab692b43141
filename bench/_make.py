"""Part 4: the build example against ``make -j`` on the same graph.

``examples/build.yaml`` is turned into a Makefile with the same tasks, the same shell commands
and the same dependencies (one phony target per task, ``.ONESHELL`` so a multi-line command runs
in one shell, as plait runs it). Both run with 4 jobs and no other limit (make has nothing like
the example's ``cc`` pool, so plait runs without it here too). plait is timed twice: in-process
(``plait.run``) and as the command a person types (``plait run build.yaml -q``: interpreter start
and imports included, as make's process start is).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _report import heading, num, ratio, table

import plait
from plait._shell import ShellTask

JOBS = 4
REPEATS = 3
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "build.yaml"


def makefile(workflow: plait.Workflow) -> str:
    """The Makefile that runs ``workflow``'s shell tasks as make would."""
    needed = {dep for spec in workflow.tasks.values() for dep in spec.depends_on}
    finals = [task_id for task_id in workflow.tasks if task_id not in needed]
    lines = [
        "SHELL := /bin/sh",
        ".ONESHELL:",
        f".PHONY: all {' '.join(workflow.tasks)}",
        f"all: {' '.join(finals)}",
    ]
    for spec in workflow.tasks.values():
        if not isinstance(spec.fn, ShellTask) or not isinstance(spec.fn.command, str):
            raise TypeError(f"task {spec.id!r} is not a shell command; make cannot run it")
        lines.append(f"{spec.id}: {' '.join(spec.depends_on)}")
        body = spec.fn.command.replace("$", "$$").strip().splitlines()
        lines += ["\t@" + body[0], *("\t" + line for line in body[1:])]
    return "\n".join(lines) + "\n"


def _best(fn: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def run_part4(log: Callable[[str], None]) -> None:
    """Run and print Part 4."""
    print(heading("Part 4 - the build example vs make -j"))
    if shutil.which("make") is None:
        print("  make is not installed: skipped")
        return
    loaded = plait.load_target(str(EXAMPLE))
    workflow, pools = loaded.workflow, loaded.settings.get("pools", {})
    folder = Path(tempfile.mkdtemp(prefix="plait-make-"))
    (folder / "Makefile").write_text(makefile(workflow))
    env = {**os.environ, "BUILD_DIR": str(folder / "build"), "PLAIT_HOME": str(folder / "home")}
    quiet = subprocess.DEVNULL

    def with_make() -> None:
        subprocess.run(
            ["make", f"-j{JOBS}", "-s", "all"], cwd=folder, env=env, check=True, stdout=quiet
        )

    def in_process() -> None:
        os.environ["BUILD_DIR"] = env["BUILD_DIR"]
        result = plait.run(
            workflow, max_concurrency=JOBS, pools=pools, store=plait.stores.MemoryStore()
        )
        if result.status is not plait.RunStatus.SUCCEEDED:
            raise RuntimeError(f"the build example ended {result.status}: {result.error}")

    def command() -> None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "plait.cli",
                "run",
                str(EXAMPLE),
                "-q",
                "-c",
                str(JOBS),
                "--store",
                "memory://",
            ],
            env=env,
            check=True,
            stdout=quiet,
        )

    log("part 4: make -j vs plait on examples/build.yaml")
    critical = sum(workflow.tasks[t].estimate or 0.0 for t in workflow.graph().critical_path())
    times = {"make": _best(with_make), "plait.run": _best(in_process), "plait run": _best(command)}
    print(
        f"{len(workflow)} shell tasks of {EXAMPLE.name}, {JOBS} jobs, no pool; best of {REPEATS}. "
        f"Critical path by estimate: {critical:.2f} s."
    )
    rows = [
        [name, num(seconds * 1e3), ratio(seconds / times["make"])]
        for name, seconds in times.items()
    ]
    print(table(["runner", "wall ms", "vs make -j"], rows))
