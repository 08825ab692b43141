"""Part 3, continued: how fast an owner that lost its lease stops.

A child process runs a chain of 0.1 s async tasks (cancelled at once when a run stops; a sync
task would be waited for, up to ``cancel_grace``) on an SQLite store with ``lease_seconds=1``.
The benchmark stops it (SIGSTOP) once a task has started, waits until the lease has expired,
takes the run over with another owner, and continues the child (SIGCONT). It measures the time
from SIGCONT to the child's ``plait.LeaseLostError`` (the run stopped, its running task
cancelled), and counts the tasks the child started after SIGCONT (the goal: none).
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from _report import heading, num, table

from plait.stores import SQLiteStore

LEASE = 1.0
REPEATS = 3

CHILD = """
import asyncio, sys, time, plait

async def step():
    await asyncio.sleep(0.1)

wf = plait.Workflow("chain")
for i in range(100):
    wf.add_task(f"t{i}", step, depends_on=[f"t{i - 1}"] if i else [])

def progress(event):
    if isinstance(event, plait.TaskStarted):
        print("started", time.time(), event.task_id, flush=True)

try:
    plait.run(wf, run_id="lease", store="sqlite://" + sys.argv[1],
              lease_seconds=float(sys.argv[2]), subscribers=[progress])
except plait.LeaseLostError as error:
    print("lost", time.time(), error, flush=True)
"""


def _once(folder: Path) -> tuple[float, int]:
    """One stop-and-continue: seconds from SIGCONT to LeaseLostError, tasks started after."""
    db = folder / f"lease-{time.monotonic_ns()}.db"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(db), str(LEASE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # plait logs the lost lease there too
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().startswith("started")
    child.send_signal(signal.SIGSTOP)
    with SQLiteStore(db) as store:
        record = store.get_run("lease")
        assert record is not None and record.lease_expires_at is not None
        time.sleep(max(0.0, record.lease_expires_at - time.time()) + 0.05)
        store.claim("lease", "bench:new-owner", lease_seconds=60)
    continued = time.time()
    child.send_signal(signal.SIGCONT)
    out, _ = child.communicate(timeout=60)
    lines = out.splitlines()
    lost = [line for line in lines if line.startswith("lost")]
    if not lost:
        raise RuntimeError(f"the stopped owner did not report a lost lease: {out[-500:]}")
    started_after = sum(
        line.startswith("started") and float(line.split()[1]) > continued for line in lines
    )
    return float(lost[0].split()[1]) - continued, started_after


def run_lease(log: Callable[[str], None]) -> None:
    """Run and print the lease measurement (no target: a figure to watch)."""
    print(heading("Part 3b - stopping after a lost lease"))
    print(textwrap.fill(__doc__.split("\n\n")[1].replace("\n", " "), 96))
    rows = []
    with tempfile.TemporaryDirectory(prefix="plait-bench-lease-") as folder:
        latencies, started = [], []
        for i in range(REPEATS):
            log(f"part 3b: lost lease {i + 1}/{REPEATS}")
            latency, after = _once(Path(folder))
            latencies.append(latency * 1000)
            started.append(after)
    rows.append(
        [
            f"{LEASE:g}",
            num(statistics.median(latencies)),
            num(max(latencies)),
            str(max(started)),
        ]
    )
    print(
        table(
            ["lease s", "SIGCONT -> LeaseLostError ms (median)", "max ms", "tasks started after"],
            rows,
        )
    )
