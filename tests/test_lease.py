"""Leases, for real: an owner stopped (SIGSTOP) past its lease, resumed by another process,
then continued (SIGCONT), must start nothing more and say that it lost the run.

Each test runs plait in child processes on an SQLite store, with a short lease
(``lease_seconds=1.5``). Each process appends ``<pid> <task>`` to a file when it starts a task
(from a subscriber: when the engine decides to), so the test knows which process started what,
and when.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import plait
from plait import RunStatus, TaskStatus
from plait.stores import SQLiteStore

TASKS = 6
LEASE = 1.5  # short, yet long enough for a loaded machine to renew it in time

FLOW = f"""
import time, plait

wf = plait.Workflow("chain")

def step(name):
    def run():
        time.sleep(0.2)
        return name
    return run

for i in range({TASKS}):
    wf.add_task(f"t{{i}}", step(f"t{{i}}"), depends_on=[f"t{{i - 1}}"] if i else [])
"""

# Prints a line per task start, and how the run ended: "result <status>" or the error's class
# and message; exits 4 when plait lost the run.
RUN = """
import os, sys, plait, leaseflow

def progress(event):
    if isinstance(event, plait.TaskStarted):
        with open(os.environ["LEASE_STARTS"], "a") as starts:
            starts.write(f"{os.getpid()} {event.task_id}\\n")
        print("started", event.task_id, flush=True)

try:
    if sys.argv[1] == "run":
        result = plait.run(leaseflow.wf, run_id="lease", store="sqlite://" + sys.argv[2],
                           lease_seconds=float(sys.argv[3]), subscribers=[progress])
    else:
        result = plait.resume("lease", leaseflow.wf, store="sqlite://" + sys.argv[2],
                              lease_seconds=float(sys.argv[3]), subscribers=[progress])
except (plait.LeaseLostError, plait.StoreUnavailableError) as error:
    print(type(error).__name__, error, flush=True)
    sys.exit(4)
print("result", result.status, flush=True)
"""


@pytest.fixture
def flow_dir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "leaseflow.py").write_text(FLOW)
    yield tmp_path


def plait_process(flow_dir: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": f"{flow_dir}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "LEASE_STARTS": str(flow_dir / "starts.txt"),
    }
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(RUN), *args],
        cwd=flow_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def starts(flow_dir: Path, pid: int) -> list[str]:
    """The tasks that process ``pid`` started, in order."""
    path = flow_dir / "starts.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return [task for p, task in (line.split() for line in lines) if int(p) == pid]


def wait_for_starts(process: subprocess.Popen[str], count: int) -> None:
    assert process.stdout is not None
    for _ in range(count):
        line = process.stdout.readline()
        assert line.startswith("started"), line + process.communicate()[1]


def stop_outside_a_write(process: subprocess.Popen[str], db: Path) -> None:
    """SIGSTOP ``process`` at a moment it holds no SQLite write lock.

    A process stopped in the middle of a write keeps SQLite's lock, and every other process
    then waits for it (a limit of SQLite itself, whatever the lease says); the scenario under
    test is an owner stopped between writes, as nearly all of its time is spent.
    """
    for _ in range(100):
        process.send_signal(signal.SIGSTOP)
        probe = sqlite3.connect(db, timeout=0.1, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:  # stopped inside a write: let it finish, try again
            process.send_signal(signal.SIGCONT)
            time.sleep(0.02)
        finally:
            probe.close()
    raise AssertionError("the owner was always inside a write")


def test_an_owner_stopped_past_its_lease_starts_nothing_after_another_resumed_it(
    flow_dir: Path,
) -> None:
    db = flow_dir / "plait.db"
    first = plait_process(flow_dir, "run", str(db), str(LEASE))
    wait_for_starts(first, 2)
    stop_outside_a_write(first, db)
    try:
        before = starts(flow_dir, first.pid)  # stable: the process is stopped
        with SQLiteStore(db) as store:
            record = store.get_run("lease")
            assert record is not None and record.lease_expires_at is not None
            time.sleep(max(0.0, record.lease_expires_at - time.time()) + 0.05)

            second = plait_process(flow_dir, "resume", str(db), str(LEASE))
            wait_for_starts(second, 2)  # the new owner is at work
            record = store.get_run("lease")
            assert record is not None and record.owner is not None
            new_owner = record.owner
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = first.communicate(timeout=30)
    assert first.returncode == 4, out + err
    assert out.splitlines()[-1].startswith(
        f"LeaseLostError plait lost run 'lease': its owner is now {new_owner!r}"
    ), out
    assert starts(flow_dir, first.pid) == before  # nothing started after the lease expired

    out, err = second.communicate(timeout=30)
    assert out.splitlines()[-1] == "result succeeded", out + err
    result = plait.get_run("lease", store=SQLiteStore(db))
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs == {f"t{i}": f"t{i}" for i in range(TASKS)}
    assert all(task.status is TaskStatus.SUCCEEDED for task in result.tasks.values())
    # The first owner's last task may have finished after the resume began; nothing the
    # first owner did after its lease expired reached the store.
    events = SQLiteStore(db).load_events("lease")
    assert [e.task_id for e in events if e.kind == "TaskSucceeded"] == [
        f"t{i}" for i in range(TASKS)
    ]
