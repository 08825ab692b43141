"""Part 6: start-up time of the ``plait`` command, as ratios to a bare Python start.

A command line is used in loops and scripts, where its start-up is paid every time. Each command
is timed from spawn to exit with its output to a pipe, interleaved with the reference one-liner
``python -c "import asyncio, json, logging"`` (what any asyncio program pays) in the same
rounds, so that the load of a shared machine weighs on both alike; the medians are compared.

Targets: ``plait --help`` <= 2.5x the one-liner, a one-task ``plait run`` <= 3.5x. ``import
plait`` alone is shown for information.

plait's modules are compiled to bytecode first, as ``pip install`` does for an installed package
(the standard library and the dependencies already are): in an editable checkout, a module
changed since its ``.pyc`` was written -- or any module, where ``PYTHONDONTWRITEBYTECODE`` is set
-- would otherwise be compiled from source at every start, which no user's install does.
"""

from __future__ import annotations

import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from _report import Ledger, heading, num, ratio, table, verdict

ROUNDS = 21
QUICK_ROUNDS = 7

HELP_TARGET = 2.5
RUN_TARGET = 3.5

ONE_TASK = """\
import plait

wf = plait.Workflow("one")


@wf.task
def hello() -> str:
    return "hello"
"""


def _plait() -> list[str]:
    """The ``plait`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("plait")
    return [str(script)] if script.exists() else [sys.executable, "-m", "plait.cli"]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(command: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Seconds from spawn to exit, and CPU seconds the process used; output goes to a pipe,
    as in a script."""
    cpu = _cpu()
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr!r}")
    return elapsed, _cpu() - cpu


def measure(rounds: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU seconds of each command over ``rounds`` interleaved rounds."""
    import plait  # noqa: PLC0415 - where its modules are

    compileall.compile_dir(Path(plait.__file__).parent, quiet=1)  # as an install would
    with tempfile.TemporaryDirectory(prefix="plait-startup-") as tmp:
        directory = Path(tmp)
        (directory / "one_task.py").write_text(ONE_TASK)
        env = {**os.environ, "PLAIT_HOME": str(directory / "home")}
        env.pop("PLAIT_STORE", None)
        commands: dict[str, Callable[[int], list[str]]] = {
            "python -c 'import asyncio, json, logging'": lambda _: [
                sys.executable,
                "-c",
                "import asyncio, json, logging",
            ],
            "python -c 'import plait'": lambda _: [sys.executable, "-c", "import plait"],
            "plait --help": lambda _: [*_plait(), "--help"],
            "plait run (one task, SQLite store)": lambda n: [
                *_plait(),
                "run",
                "one_task.py:wf",
                "--run-id",
                f"r{n}",
            ],
        }
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for command in commands.values():  # warm the caches (.pyc, the store's file)
            _time(command(-1), env, directory)
        for n in range(rounds):
            for name, command in commands.items():
                times[name].append(_time(command(n), env, directory))
    return {
        name: (statistics.median(t[0] for t in values), statistics.median(t[1] for t in values))
        for name, values in times.items()
    }


def run_part6(ledger: Ledger, log: Callable[[str], None], *, quick: bool = False) -> None:
    """Measure, print the table, and record the two targets."""
    rounds = QUICK_ROUNDS if quick else ROUNDS
    log(f"part 6: start-up time, {rounds} interleaved rounds")
    medians = measure(rounds)
    base, base_cpu = medians["python -c 'import asyncio, json, logging'"]
    print(heading("Part 6: start-up time (median of interleaved runs, output to a pipe)"))
    rows = [
        [name, num(wall * 1000, 0), ratio(wall / base), num(cpu * 1000, 0), ratio(cpu / base_cpu)]
        for name, (wall, cpu) in medians.items()
    ]
    print(table(["command", "wall ms", "vs python", "CPU ms", "CPU vs python"], rows))
    print(
        "  (the targets are on wall time; CPU time, which other processes disturb less, is "
        "shown beside it)"
    )
    for name, goal in (
        ("plait --help", HELP_TARGET),
        ("plait run (one task, SQLite store)", RUN_TARGET),
    ):
        measured = medians[name][0] / base
        target = ledger.add(
            f"start-up: {name}", f"<= {goal}x python", ratio(measured), measured <= goal
        )
        print(f"  {target.name}: {target.measured} ({verdict(target.ok)})")
