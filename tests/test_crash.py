"""Crash recovery: kill -9 a run at many points, resume it elsewhere, lose and repeat nothing.

A child process runs a 30-task workflow on a SQLite store whose writes are slowed down (each
statement of a write transaction sleeps a little), and every third kill waits for a store write
to begin, so that many kills land in the middle of one. Every task appends a line to a
side-effects file when it starts. After each kill the store is read, the run is resumed by another
process (the test's own, which the run never belonged to), and the test checks that

- the final outputs equal those of an uninterrupted run, and
- no task that the store had recorded ``succeeded`` before the kill ran again.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _modules import module_from_file

import plait
from plait import RunStatus, TaskStatus
from plait.stores import SQLiteStore

TASKS = 30
KILLS = 24


def flow_source() -> str:
    """A layered workflow whose outputs depend on their inputs, with a side effect per task."""
    rng = random.Random(5)
    lines = [
        "import os, time, plait",
        "wf = plait.Workflow('crashy')",
    ]
    for i in range(TASKS):
        deps = sorted(rng.sample(range(max(0, i - 6), i), k=min(i, rng.randint(0, 2))))
        params = ", ".join(["ctx", *(f"t{d}" for d in deps)])
        total = " + ".join([str(i), *(f"t{d}" for d in deps)])
        lines += [
            f"def t{i}({params}):",
            "    with open(os.environ['CRASH_EFFECTS'], 'a') as effects:",
            f"        effects.write(f't{i} {{ctx.attempt}}\\n')",
            f"    time.sleep({rng.uniform(0.02, 0.08):.3f})",
            f"    return {total}",
            f"wf.add_task('t{i}', t{i}, depends_on={[f't{d}' for d in deps]!r})",
        ]
    return "\n".join(lines) + "\n"


CHILD = """
import sys, time, plait, crashflow
from plait.stores import SQLiteStore

class SlowConnection:
    '''Delegates to the real connection; each statement of a write sleeps a little, and marks
    the file while a transaction is open, so the test knows whether a kill hit a write.'''
    def __init__(self, conn, marks):
        self._conn, self._marks, self._writing = conn, marks, False
    def __getattr__(self, name):
        return getattr(self._conn, name)
    def execute(self, sql, *args):
        if sql.startswith("BEGIN"):
            self._marks.write("begin\\n"); self._marks.flush()
            self._writing = True
        result = self._conn.execute(sql, *args)
        if sql.startswith("COMMIT"):
            self._marks.write("commit\\n"); self._marks.flush()
            self._writing = False
        elif self._writing and not sql.startswith("BEGIN"):
            time.sleep(0.01)
        return result
    def executemany(self, sql, rows):
        result = self._conn.executemany(sql, rows)
        time.sleep(0.004)
        return result

store = SQLiteStore(sys.argv[1])
store._conn = SlowConnection(store._conn, open(sys.argv[2], "a"))
def progress(event):
    if isinstance(event, plait.RunStarted | plait.TaskSucceeded):
        print(type(event).__name__, flush=True)
plait.run(crashflow.wf, run_id="crash", store=store, max_concurrency=4, subscribers=[progress])
print("finished", flush=True)
"""


def python(code: str, *args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def effects(path: Path) -> collections.Counter[str]:
    if not path.exists():
        return collections.Counter()
    return collections.Counter(line.split()[0] for line in path.read_text().splitlines())


def wait_for_a_write(marks: Path, timeout: float = 5.0) -> None:
    """Return once the child is inside a store write (its marks file ends with ``begin``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marks.exists() and marks.read_text().splitlines()[-1:] == ["begin"]:
            return
        time.sleep(0.001)


@pytest.fixture(scope="module")
def flow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("crash")
    (directory / "crashflow.py").write_text(flow_source())
    return directory


def test_a_run_killed_at_any_point_resumes_without_losing_or_repeating_work(
    flow_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The killed runs are child processes; the resumes run here, in another process than the
    # one that owned the run (as its successor would), without an interpreter start each.
    crashflow = module_from_file(flow_dir / "crashflow.py")
    monkeypatch.setenv("CRASH_EFFECTS", str(tmp_path / "expected-effects.txt"))
    expected = plait.run(crashflow.wf, store="memory://").outputs
    assert len(expected) == TASKS
    env = {**os.environ, "PYTHONPATH": f"{flow_dir}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}

    rng = random.Random(11)
    in_write = 0
    progress = []  # how many tasks the store had recorded succeeded at each kill
    reached = []  # how many tasks had run (their side effect done) at each kill
    for k in range(KILLS):
        case = tmp_path / f"kill{k}"
        case.mkdir()
        env["CRASH_EFFECTS"] = str(case / "effects.txt")
        monkeypatch.setenv("CRASH_EFFECTS", env["CRASH_EFFECTS"])
        db, marks = case / "plait.db", case / "marks"
        child = python(CHILD, str(db), str(marks), cwd=flow_dir, env=env)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "RunStarted", child.communicate()[1]
        # Spread the kills over the whole run: the k-th waits for a k-th of the tasks to
        # finish, then a few milliseconds more, so that it lands anywhere, writes included.
        for _ in range(k * TASKS // KILLS):
            assert child.stdout.readline().strip() == "TaskSucceeded"
        if k % 3 == 1:  # every third kill waits for a store write to begin, and hits it
            wait_for_a_write(marks)
        else:
            time.sleep(rng.uniform(0, 0.02))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        assert child.returncode == -signal.SIGKILL
        if marks.exists() and marks.read_text().splitlines()[-1:] == ["begin"]:
            in_write += 1

        with SQLiteStore(db) as store:
            recorded = {
                task_id
                for task_id, record in store.load_tasks("crash").items()
                if record.status is TaskStatus.SUCCEEDED
            }
        progress.append(len(recorded))
        before = effects(case / "effects.txt")
        reached.append(len(before))
        assert recorded <= set(before)  # a recorded success did run

        resumed = plait.resume("crash", crashflow.wf, store=f"sqlite://{db}", force=True)
        assert resumed.status is RunStatus.SUCCEEDED, resumed.error

        final = plait.get_run("crash", store=SQLiteStore(db))
        assert final.status is RunStatus.SUCCEEDED
        assert final.outputs == expected, f"kill {k}: outputs differ"
        after = effects(case / "effects.txt")
        rerun = sorted(t for t in recorded if after[t] != before[t])
        assert rerun == [], f"kill {k}: tasks recorded succeeded ran again: {rerun}"
        assert all(after[t] >= 1 for t in expected)
    assert in_write >= KILLS // 3, f"only {in_write} of {KILLS} kills landed during a store write"
    # The kills are spread over the run: some early, some late. Counted by the tasks that had
    # run, not by those recorded: the recorder writes in batches (every 0.1 s), so what it had
    # recorded lags behind by however many tasks finished since its last write.
    assert min(reached) < TASKS / 3 < 2 * TASKS / 3 < max(reached), (reached, progress)
    print(
        f"kills: {KILLS}, during a store write: {in_write}, tasks run: {reached}, "
        f"recorded successes: {progress}"
    )
