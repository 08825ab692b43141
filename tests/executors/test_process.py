"""The process executor: real worker processes, real signals (kill -9, SIGTERM), psutil."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import plait
from plait import LogLine, RunStatus, TaskStatus, Workflow
from plait.executors import Outcome, ProcessExecutor, TaskCall
from plait.executors._streaming import BATCH_LINES

from ._process_tasks import (
    add,
    ask,
    async_pid,
    burst,
    chatty,
    exit_now,
    holds_a_lock,
    note_cancel,
    pid,
    seen_then_exit,
    seen_then_spin,
    segfault,
    shout,
    sleep_long,
    spin_with_a_child,
    until_cancelled,
    use,
    wait_for_file,
)

pytestmark = pytest.mark.timeout(60)


# -- a job without an engine -----------------------------------------------------------------


class FakeJob:
    """A job as the engine would hand it, minus the engine: records its outcome."""

    def __init__(self, fn: Callable[..., Any] | None, **fields: Any) -> None:
        base: dict[str, Any] = {
            "run_id": "r",
            "task_id": "t",
            "attempt": 1,
            "idempotency_key": "r/t",
            "fn": fn,
            "log_limit": 65536,
        }
        self._call = TaskCall(**{**base, **fields})
        self.cancelled = False
        self.abandoned = False
        self.outcome: Outcome | None = None
        self.done = threading.Event()
        self.batches: list[list[LogLine]] = []  # lines it said, as they came while it ran
        self.behind: FakeJob | None = None  # handed out once by queue_behind
        self.ahead: FakeJob | None = None  # the job it was queued behind
        self.begun = threading.Event()

    def call(self) -> TaskCall:
        return self._call

    def queue_behind(self) -> FakeJob | None:
        behind, self.behind = self.behind, None
        if behind is not None:
            behind.ahead = self
        return behind

    def began(self) -> None:
        ahead = self.ahead
        assert ahead is None or ahead.outcome is not None, "began before the job ahead ended"
        self.begun.set()

    def logged(self, lines: list[LogLine], *, echoed: bool = False) -> None:
        assert self.outcome is None, "lines after the outcome"
        assert echoed, "a process worker's prints are written out as they come"
        self.batches.append(lines)

    def complete(self, outcome: Outcome) -> None:
        assert self.outcome is None, "completed twice"
        self.outcome = outcome
        self.done.set()

    def said(self) -> list[tuple[str, str]]:
        """Every line the attempt said, as (stream, text): sent while it ran, then the rest
        with its outcome."""
        assert self.outcome is not None
        lines = [line for batch in self.batches for line in batch] + self.outcome.logs
        return [(line.stream, line.text) for line in lines]

    def run(self) -> None:
        raise AssertionError("a shipped job is never run in process")

    def finish(self) -> None:
        raise AssertionError("a shipped job is never finished in process")

    def result(self, timeout: float = 30) -> Outcome:
        assert self.done.wait(timeout), "no outcome"
        assert self.outcome is not None
        return self.outcome


@pytest.fixture
def executor() -> Iterator[ProcessExecutor]:
    pool = ProcessExecutor(max_workers=2)
    yield pool
    pool.shutdown(wait=True)


# -- the executor on its own -------------------------------------------------------------------


def test_a_call_runs_in_another_process_and_its_worker_is_reused(
    executor: ProcessExecutor,
) -> None:
    first, second = FakeJob(pid), FakeJob(add, kwargs={"a": 1, "b": 2})
    executor.submit(first)
    worker = first.result().output
    executor.submit(second)
    assert second.result().output == 3
    assert worker != os.getpid()
    assert executor.worker_pids() == [worker]
    assert executor.statistics().started == 1


def test_big_calls_and_outcomes_cross_the_pipe_whole_between_small_ones(
    executor: ProcessExecutor,
) -> None:
    """A message past one read of the pipe (an argument, an output), between small ones."""
    for size, times in ((3, 1), (300_000, 4), (5, 2)):
        data = bytes(range(97, 123)) * size
        job = FakeJob(shout, kwargs={"data": data, "times": times})
        executor.submit(job)
        outcome = job.result()
        assert outcome.error is None
        assert outcome.output == data.upper() * times
        assert job.said() == [("stdout", "shouting")]  # streamed, or in the outcome: once


def test_each_worker_leads_its_own_process_group(executor: ProcessExecutor) -> None:
    job = FakeJob(pid)
    executor.submit(job)
    worker = job.result().output
    assert os.getpgid(worker) == worker
    assert os.getpgid(worker) != os.getpgrp()


def test_a_module_put_on_sys_path_after_the_worker_started_is_importable_there(
    executor: ProcessExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = FakeJob(pid)
    executor.submit(first)
    first.result()
    (tmp_path / "late_module_for_plait.py").write_text("def triple(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    triple = importlib.import_module("late_module_for_plait").triple
    job = FakeJob(triple, kwargs={"x": 5})
    executor.submit(job)
    assert job.result().output == 15
    assert executor.statistics().started == 1  # the same worker learned the new path


def test_a_lambda_and_a_closure_ship_by_value(executor: ProcessExecutor) -> None:
    base = 10
    jobs = [FakeJob(lambda: base + 1), FakeJob(lambda x: x * base, kwargs={"x": 4})]
    for job in jobs:
        executor.submit(job)
    assert [job.result().output for job in jobs] == [11, 40]


def test_an_async_function_runs_under_asyncio_run_in_the_worker(
    executor: ProcessExecutor,
) -> None:
    job = FakeJob(async_pid, kwargs={"x": 3}, is_async=True)
    executor.submit(job)
    worker, x = job.result().output
    assert (worker != os.getpid(), x) == (True, 3)


def test_a_cancel_stops_an_async_task_at_its_next_await(executor: ProcessExecutor) -> None:
    job = FakeJob(sleep_long, is_async=True)
    executor.submit(job)
    while executor.statistics().busy == 0:
        time.sleep(0.01)
    time.sleep(0.2)  # let the call reach its await (a cancel before it starts works as well)
    job.cancelled = True
    executor.cancel(job)
    outcome = job.result()
    assert isinstance(outcome.error, asyncio.CancelledError)


def test_a_cancel_reaches_the_context_in_the_worker(
    executor: ProcessExecutor, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    job = FakeJob(until_cancelled, kwargs={"marker": str(marker)}, context_parameter="ctx")
    executor.submit(job)
    while not marker.exists():
        time.sleep(0.01)
    job.cancelled = True
    executor.cancel(job)
    assert job.result().output is True


def test_a_job_cancelled_before_a_worker_takes_it_is_never_called(
    executor: ProcessExecutor, tmp_path: Path
) -> None:
    marker = tmp_path / "m"
    job = FakeJob(until_cancelled, kwargs={"marker": str(marker)}, context_parameter="ctx")
    job.cancelled = True  # as the engine does for a run that stopped (thread executor alike)
    executor.submit(job)
    error = job.result().error
    assert isinstance(error, plait.TaskCancelledError)
    assert str(error) == "cancelled before it started"
    assert not marker.exists()


def test_logs_and_prints_come_back_each_once(executor: ProcessExecutor) -> None:
    job = FakeJob(chatty, context_parameter="ctx")
    executor.submit(job)
    job.result()
    assert job.said() == [
        ("stdout", "printed in the worker"),
        ("log", "INFO plait.task: logged in the worker: 42"),
    ]


def test_a_burst_of_lines_comes_back_in_a_few_batches_in_order(
    executor: ProcessExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    job = FakeJob(burst, kwargs={"n": 10_000})
    executor.submit(job)
    assert job.result().output == 10_000
    assert job.said() == [("stdout", f"line {i}") for i in range(10_000)]
    # A batch every BATCH_LINES lines, and one each FLUSH_SECONDS the burst lasts: not 10,000.
    assert 10_000 // BATCH_LINES <= len(job.batches) <= 100
    assert max(len(batch) for batch in job.batches) == BATCH_LINES
    assert capsys.readouterr().out.count("\n") == 10_000  # and each printed once


def test_what_a_worker_prints_is_written_to_this_process_s_streams(
    executor: ProcessExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    job = FakeJob(chatty, context_parameter="ctx")
    executor.submit(job)
    job.result()
    assert capsys.readouterr().out == "printed in the worker\n"


def test_an_unpicklable_function_fails_with_an_error_naming_the_task(
    executor: ProcessExecutor,
) -> None:
    lock = threading.Lock()

    def is_locked() -> bool:  # a closure over a lock: no pickler can ship it
        return lock.locked()

    job = FakeJob(is_locked, task_id="locked")
    executor.submit(job)
    error = job.result().error
    assert isinstance(error, plait.NotPicklableError)
    assert str(error).startswith("task 'locked': its function, a function, cannot be pickled")
    assert executor.statistics().started == 0  # nothing was sent anywhere


def test_an_unpicklable_argument_fails_with_an_error_naming_the_task_and_argument(
    executor: ProcessExecutor,
) -> None:
    job = FakeJob(use, task_id="user", kwargs={"value": threading.Lock()})
    executor.submit(job)
    error = job.result().error
    assert isinstance(error, plait.NotPicklableError)
    assert str(error).startswith(
        "task 'user': its argument 'value', a _thread.lock, cannot be pickled to reach its "
        "worker process (TypeError: cannot pickle '_thread.lock' object); pass plain data"
    )


def test_an_unpicklable_output_fails_with_an_error_naming_the_task_and_type(
    executor: ProcessExecutor,
) -> None:
    job = FakeJob(holds_a_lock, task_id="maker")
    executor.submit(job)
    error = job.result().error
    assert isinstance(error, plait.NotPicklableError)
    assert str(error).startswith(
        "task 'maker': its output, a _thread.lock, cannot be pickled to come back from its "
        "worker process"
    )
    again = FakeJob(pid)  # the worker lived on
    executor.submit(again)
    assert again.result().error is None
    assert executor.statistics().started == 1


def test_a_worker_that_exits_unasked_fails_its_job_with_worker_lost_and_is_replaced(
    executor: ProcessExecutor,
) -> None:
    job = FakeJob(exit_now, task_id="quitter")
    executor.submit(job)
    error = job.result().error
    assert isinstance(error, plait.WorkerLostError)
    assert "task 'quitter' (attempt 1): its worker process" in str(error)
    assert "exited with status 7 before the attempt ended" in str(error)
    again = FakeJob(pid)
    executor.submit(again)
    assert again.result().output != os.getpid()
    assert executor.statistics().started == 2


def test_a_worker_that_crashes_fails_its_job_with_worker_lost(executor: ProcessExecutor) -> None:
    job = FakeJob(segfault, task_id="crasher")
    executor.submit(job)
    error = job.result().error
    assert isinstance(error, plait.WorkerLostError)
    assert "was killed by SIGSEGV before the attempt ended" in str(error)


def test_abandon_kills_the_worker_group_and_every_grandchild(
    executor: ProcessExecutor, tmp_path: Path
) -> None:
    marker = tmp_path / "pids"
    job = FakeJob(spin_with_a_child, kwargs={"marker": str(marker)})
    executor.submit(job)
    while not marker.exists() or not marker.read_text():
        time.sleep(0.01)
    worker, grandchild = map(int, marker.read_text().split())
    job.abandoned = True
    executor.abandon(job)
    executor.shutdown(wait=True)  # reaps the worker it killed
    assert job.outcome is None  # an abandoned job is not completed
    assert_gone(worker, grandchild)


def test_a_job_abandoned_at_its_cancel_gets_the_grace_to_see_ctx_cancelled(
    tmp_path: Path,
) -> None:
    executor = ProcessExecutor(max_workers=1, cancel_grace=10)
    marker = tmp_path / "note"
    job = FakeJob(note_cancel, kwargs={"marker": str(marker)}, context_parameter="ctx")
    try:
        executor.submit(job)
        while not marker.exists():
            time.sleep(0.01)
        job.cancelled = True  # a timeout: the engine cancels and gives up at once
        executor.cancel(job)
        job.abandoned = True
        executor.abandon(job)
        while marker.read_text() == "started":
            time.sleep(0.01)
        assert marker.read_text() == "cancelled"
        assert executor.statistics().slots == 0  # its slot was freed at once
    finally:
        executor.shutdown(wait=True)
    assert job.outcome is None


def test_shutdown_kills_idle_and_busy_workers_alike(tmp_path: Path) -> None:
    executor = ProcessExecutor(max_workers=2)
    marker = tmp_path / "pids"
    busy = FakeJob(spin_with_a_child, kwargs={"marker": str(marker)})
    idle = FakeJob(pid)
    executor.submit(idle)
    idle_pid = idle.result().output
    executor.submit(busy)
    while not marker.exists() or not marker.read_text():
        time.sleep(0.01)
    worker, grandchild = map(int, marker.read_text().split())
    executor.shutdown(wait=True)
    assert_gone(idle_pid, worker, grandchild)
    assert executor.worker_pids() == []
    with pytest.raises(RuntimeError, match="shut down; make a new one"):
        executor.submit(FakeJob(pid))


def test_max_workers_must_be_a_positive_int() -> None:
    message = r"^max_workers must be an int >= 1 or None, not 0$"
    with pytest.raises(plait.ConfigError, match=message):
        ProcessExecutor(max_workers=0)
    assert ProcessExecutor(max_workers=3).capacity == 3
    assert ProcessExecutor().capacity is None


def assert_gone(*pids: int) -> None:
    """Each of ``pids`` has exited, within a wide margin (a zombie counts as gone: a grandchild
    is reparented to PID 1, which may be slow to reap it, or never, in a container)."""
    deadline = time.monotonic() + 10
    for process_id in pids:
        while True:
            try:
                status = psutil.Process(process_id).status()
            except psutil.NoSuchProcess:
                break
            if status == psutil.STATUS_ZOMBIE:
                break
            assert time.monotonic() < deadline, f"process {process_id} is still {status}"
            time.sleep(0.01)


# -- through the engine ------------------------------------------------------------------------


@pytest.fixture
def on_processes() -> Iterator[list[ProcessExecutor]]:
    """The ``process`` executor as a run makes it by name, kept to look at after the run."""
    made: list[ProcessExecutor] = []
    yield made
    for executor in made:
        executor.shutdown(wait=True)


def run_on_processes(
    made: list[ProcessExecutor], workflow: Workflow, **settings: Any
) -> plait.RunResult:
    """``plait.run`` with every sync task on a ProcessExecutor (of the run's size) that the
    test keeps, so it can look at the workers afterwards."""
    pool = ProcessExecutor(
        settings.get("max_concurrency"), cancel_grace=settings.get("cancel_grace", 5.0)
    )
    made.append(pool)
    return plait.run(workflow, executors={"process": pool}, default_executor="process", **settings)


def test_sigkill_of_one_worker_fails_only_its_attempt_which_is_retried(
    on_processes: list[ProcessExecutor], tmp_path: Path
) -> None:
    wf = Workflow("three")
    for name in "abc":
        wf.add_task(name, wait_for_file, params={"path": str(tmp_path / name)})
    events: list[plait.Event] = []
    result: list[plait.RunResult] = []

    def run() -> None:
        result.append(
            run_on_processes(
                on_processes, wf, max_concurrency=3, retry_backoff=0, subscribers=[events.append]
            )
        )

    runner = threading.Thread(target=run)
    runner.start()
    pid_files = [tmp_path / f"{name}.pid" for name in "abc"]
    while not all(path.exists() and path.read_text() for path in pid_files):
        time.sleep(0.01)
    victim = int(pid_files[1].read_text())
    os.kill(victim, signal.SIGKILL)
    while not any(isinstance(event, plait.TaskRetrying) for event in events):
        time.sleep(0.01)
    for name in "abc":
        (tmp_path / name).touch()
    runner.join(30)
    (run_result,) = result
    assert run_result.status is RunStatus.SUCCEEDED
    assert {task: r.attempts for task, r in run_result.tasks.items()} == {"a": 1, "b": 2, "c": 1}
    assert run_result.tasks["b"].output == "attempt 2"
    (retrying,) = [event for event in events if isinstance(event, plait.TaskRetrying)]
    assert retrying.task_id == "b"
    assert retrying.error.type == "plait.WorkerLostError"
    assert "was killed by SIGKILL" in retrying.error.message


def test_a_task_in_an_infinite_loop_is_killed_at_its_timeout_with_its_children(
    on_processes: list[ProcessExecutor], tmp_path: Path
) -> None:
    marker = tmp_path / "pids"
    wf = Workflow("stuck")
    wf.add_task("warm", pid)  # starts the worker, so the timeout counts the spin alone
    wf.add_task(
        "spin", spin_with_a_child, params={"marker": str(marker)}, timeout=1, depends_on=["warm"]
    )
    result = run_on_processes(on_processes, wf, max_concurrency=1, max_retries=0, cancel_grace=0.2)
    assert result.tasks["spin"].status is TaskStatus.FAILED
    assert result.tasks["spin"].error is not None
    assert result.tasks["spin"].error.type == "plait.TaskTimeoutError"
    worker, grandchild = map(int, marker.read_text().split())
    assert_gone(worker, grandchild)
    on_processes[0].shutdown(wait=True)  # the run is over; the kill may still be reaping
    assert on_processes[0].worker_pids() == []


def test_unpicklable_errors_fail_the_task_at_once(on_processes: list[ProcessExecutor]) -> None:
    wf = Workflow("pickles")
    wf.add_task("maker", holds_a_lock)
    wf.add_task("user", use, params={"value": threading.Lock()})
    result = run_on_processes(on_processes, wf, max_concurrency=2, max_retries=3, retry_backoff=0)
    for task in ("maker", "user"):
        error = result.tasks[task].error
        assert error is not None and error.type == "plait.NotPicklableError"
        assert error.message.startswith(f"task {task!r}: its ")
        assert result.tasks[task].attempts == 1  # no retry can change it


def test_a_paused_task_resumes_in_a_worker_with_its_answer(
    on_processes: list[ProcessExecutor],
) -> None:
    wf = Workflow("ask")
    wf.add_task("greet", ask)
    first = plait.run(wf, max_concurrency=1, default_executor="process")  # made by name
    assert first.status is RunStatus.PAUSED
    assert first.waiting["greet"].prompt == "name?"
    second = plait.resume(first.run_id, wf, inputs={"greet": "ada"}, default_executor="process")
    assert second.status is RunStatus.SUCCEEDED, second.error
    assert second.tasks["greet"].output == "hello ada"


def test_logs_land_in_the_attempts_log(on_processes: list[ProcessExecutor]) -> None:
    wf = Workflow("logs")
    wf.add_task("chatty", chatty)
    events: list[plait.Event] = []
    result = run_on_processes(on_processes, wf, max_concurrency=1, subscribers=[events.append])
    texts = [line.text for line in plait.get_logs(result.run_id, "chatty")]
    assert texts == ["printed in the worker", "INFO plait.task: logged in the worker: 42"]
    logged = [(e.text, e.echoed) for e in events if isinstance(e, plait.TaskLogged)]
    assert logged == [(texts[0], True), (texts[1], False)]  # each once; the print was shown


def test_a_streamed_burst_keeps_the_head_and_tail_of_the_log(
    on_processes: list[ProcessExecutor],
) -> None:
    wf = Workflow("burst")
    wf.add_task("burst", burst, params={"n": 10_000})
    result = run_on_processes(on_processes, wf, max_concurrency=1, max_log_bytes=4096)
    lines = plait.get_logs(result.run_id, "burst")
    assert lines[0].text == "line 0" and lines[-1].text == "line 9999"
    (cut,) = [line for line in lines if line.stream == "plait"]
    assert cut.text.startswith("[") and "lines (" in cut.text and "cut here" in cut.text
    assert sum(len(line.text.encode()) + 1 for line in lines if line is not cut) <= 4096
    assert [line.number for line in lines] == sorted(line.number for line in lines)
    assert lines[-1].number == 10_000  # every line counted once, none twice


@pytest.mark.parametrize(
    ("task", "error"),
    [(seen_then_spin, "plait.TaskTimeoutError"), (seen_then_exit, "plait.WorkerLostError")],
)
def test_lines_said_before_a_worker_is_killed_stay_in_the_attempts_log(
    on_processes: list[ProcessExecutor], tmp_path: Path, task: Callable[..., Any], error: str
) -> None:
    store = f"sqlite:///{tmp_path / 'plait.db'}"
    wf = Workflow("killed")
    wf.add_task("talk", task, params={"store": store}, timeout=2)
    result = run_on_processes(
        on_processes, wf, max_concurrency=1, max_retries=0, cancel_grace=0.2, store=store
    )
    failure = result.tasks["talk"].error
    assert failure is not None and failure.type == error
    texts = [line.text for line in plait.get_logs(result.run_id, "talk", store=store)]
    assert texts == ["INFO plait.task: waiting to be seen"]


# -- whole programs ----------------------------------------------------------------------------

SCRIPT = """
import dataclasses, os, sys, time
import plait


@dataclasses.dataclass
class Point:
    x: int
    y: int


def make() -> Point:
    return Point(1, os.getpid())


wf = plait.Workflow("script")
wf.add_task("make", make)
wf.add_task("shift", lambda make: Point(make.x + 1, os.getpid()), depends_on=["make"])

if __name__ == "__main__":
    result = plait.run(wf, max_concurrency=1, default_executor="process")
    shifted = result.tasks["shift"].output
    print(result.status.value, type(shifted) is Point, shifted.x, shifted.y != os.getpid())
"""


def test_the_functions_and_classes_of_a_main_script_ship_by_value(tmp_path: Path) -> None:
    script = tmp_path / "flow.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["succeeded", "True", "2", "True"]


DURABLE = """
import os, sys, time
from pathlib import Path
import plait
here = Path(sys.argv[1])


def first() -> int:
    (here / "first.ran").open("a").write("x")
    return 1


def second(first: int) -> int:
    (here / "second.pid").write_text(str(os.getpid()))
    while not (here / "go").exists():
        time.sleep(0.01)
    return first + 1


wf = plait.Workflow("durable")
wf.add_task("first", first)
wf.add_task("second", second, depends_on=["first"])

if __name__ == "__main__":
    store = f"sqlite:///{here / 'plait.db'}"
    if sys.argv[2] == "run":
        plait.run(
            wf, run_id="r1", store=store, max_concurrency=1, lease_seconds=2,
            default_executor="process",
        )
    else:
        result = plait.resume("r1", wf, store=store, default_executor="process")
        print(result.status.value, result.tasks["second"].output)
"""


def test_a_durable_run_survives_kill_9_of_its_orchestrator_and_leaves_no_worker(
    tmp_path: Path,
) -> None:
    script = tmp_path / "durable.py"
    script.write_text(DURABLE)
    orchestrator = subprocess.Popen([sys.executable, str(script), str(tmp_path), "run"])
    pid_file = tmp_path / "second.pid"
    try:
        while not (pid_file.exists() and pid_file.read_text()):
            assert orchestrator.poll() is None, "the orchestrator ended early"
            time.sleep(0.02)
        worker = int(pid_file.read_text())
        store = f"sqlite:///{tmp_path / 'plait.db'}"
        while plait.get_run("r1", store=store).tasks["first"].status is not TaskStatus.SUCCEEDED:
            time.sleep(0.02)  # the recorder writes every 0.1 s: "first" is durable once it has
        orchestrator.kill()
        orchestrator.wait()
        assert_gone(worker)  # its pipe closed: it ended its own group
    finally:
        if orchestrator.poll() is None:
            orchestrator.kill()
    (tmp_path / "go").touch()
    time.sleep(2.5)  # the dead orchestrator's lease (lease_seconds=2) runs out
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), "resume"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["succeeded", "2"]
    assert (tmp_path / "first.ran").read_text() == "x"  # recorded: not run again


HOLDS_THE_GIL = """
import os, sys
from pathlib import Path
import plait


def hold(marker: str) -> int:
    Path(marker).write_text(str(os.getpid()))
    return sum(range(10**14))  # C code that never lets the GIL go: the listener cannot run


if __name__ == "__main__":
    wf = plait.Workflow("gil")
    wf.add_task("hold", hold, params={"marker": sys.argv[1]})
    plait.run(wf, default_executor="process", max_concurrency=1)
"""


def test_a_worker_holding_the_gil_dies_with_a_killed_orchestrator(tmp_path: Path) -> None:
    script = tmp_path / "gil.py"
    script.write_text(HOLDS_THE_GIL)
    marker = tmp_path / "pid"
    orchestrator = subprocess.Popen([sys.executable, str(script), str(marker)])
    try:
        while not (marker.exists() and marker.read_text()):
            assert orchestrator.poll() is None, "the orchestrator ended early"
            time.sleep(0.02)
    finally:
        orchestrator.kill()
        orchestrator.wait()
    assert_gone(int(marker.read_text()))  # plait's watchdog killed its group


@pytest.mark.parametrize("stem", ["myflow", "string"])  # "string": the name is taken
def test_a_workflow_loaded_from_a_file_runs_its_functions_in_workers(
    tmp_path: Path, stem: str
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / f"{stem}.py").write_text(
        textwrap.dedent(
            """
            import os
            import plait

            def where() -> int:
                return os.getpid()

            wf = plait.Workflow("filed")
            wf.add_task("where", where)
            """
        )
    )
    program = textwrap.dedent(
        f"""
        import os, plait
        loaded = plait.load_target({str(flows / f"{stem}.py")!r} + ":wf")
        result = plait.run(loaded.workflow, max_concurrency=1, default_executor="process")
        print(result.status.value, result.tasks["where"].output != os.getpid())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["succeeded", "True"]


# -- shell tasks, async tasks and the command line on the process executor ------------------------


def test_an_async_task_that_names_the_process_executor_runs_in_a_worker() -> None:
    wf = Workflow("async")
    wf.add_task("where", async_pid, params={"x": 1}, executor="process")
    result = plait.run(wf, max_concurrency=1)
    worker, x = result.tasks["where"].output
    assert (worker != os.getpid(), x) == (True, 1)


def test_a_shell_task_runs_in_a_worker_and_its_command_dies_at_the_timeout(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "pid"
    wf = Workflow("shell")
    wf.add_task("hello", plait.ShellTask("echo hi from $PLAIT_TASK_ID"), executor="process")
    wf.add_task(
        "stuck",
        plait.ShellTask(f"echo $$ > {marker}; exec sleep 60"),
        executor="process",
        timeout=1,
        depends_on=["hello"],
    )
    result = plait.run(wf, max_concurrency=1, max_retries=0, cancel_grace=0.2)
    assert result.tasks["hello"].output == "hi from hello"
    assert result.tasks["stuck"].error is not None
    assert result.tasks["stuck"].error.type == "plait.TaskTimeoutError"
    assert_gone(int(marker.read_text()))


FLOW = """
name: cli
executors:
  pool: {process: {max_workers: 1}}
tasks:
  - id: plait_pid
    shell: echo $PPID
  - id: shell_worker
    shell: echo $PPID
    executor: pool
  - id: function_worker
    function: os:getpid
"""


def test_plait_run_executor_process_runs_a_workflow_file_on_workers(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW)
    plait_command = Path(sys.executable).parent / "plait"
    done = subprocess.run(
        [str(plait_command), "run", str(flow), "--executor", "process", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PLAIT_HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout.splitlines()[0])["run_id"]
    tasks = plait.get_run(run_id, store=f"sqlite:///{tmp_path / 'plait.db'}").tasks
    plait_pid = int(tasks["plait_pid"].output)  # an async shell task: on plait's event loop
    assert int(tasks["shell_worker"].output) != plait_pid  # the file's "pool"
    assert tasks["function_worker"].output != plait_pid  # --executor process: the default
