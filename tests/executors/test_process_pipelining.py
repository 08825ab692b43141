"""The process executor queues a task's call in a worker's pipe behind the running one
(pipelining, ``_scheduler_behind`` and ``_pipelining``): every semantic holds, by order and
causality (no wall-clock asserts)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import plait
from plait import Event, TaskRetrying, TaskStarted, TaskStatus, TaskSucceeded
from plait._attempt import _Attempt
from plait._pipelining import _Pipelining
from plait.executors import ProcessExecutor, ThreadExecutor

from ._process_tasks import kill_own_worker, log_span, touch


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the tasks queued behind running ones, in order: a test then knows that what
    it checks happened with pipelining."""
    tasks: list[str] = []
    queue_behind = _Pipelining.queue_behind

    def spy(run: _Pipelining, ahead: _Attempt) -> _Attempt | None:
        behind = queue_behind(run, ahead)
        if behind is not None:
            tasks.append(run.graph.ids[behind.index])
        return behind

    monkeypatch.setattr(_Pipelining, "queue_behind", spy)
    return tasks


def _run(
    wf: plait.Workflow, processes: ProcessExecutor, threads: ThreadExecutor, **settings: Any
) -> plait.RunResult:
    """Run ``wf`` with its tasks on ``processes`` or ``threads``, as each names."""
    return plait.run(wf, executors={"processes": processes, "threads": threads}, **settings)


def _on_one_worker(
    wf: plait.Workflow, *, cancel_grace: float = 5.0, **settings: Any
) -> tuple[plait.RunResult, ProcessExecutor]:
    """Run ``wf`` one task at a time on a ProcessExecutor of one worker (shut down after)."""
    processes = ProcessExecutor(max_workers=1, cancel_grace=cancel_grace)
    try:
        result = plait.run(
            wf, executors={"p": processes}, default_executor="p", max_concurrency=1, **settings
        )
    finally:
        processes.shutdown()
    return result, processes


def _most_at_once(lines: list[str]) -> int:
    running = most = 0
    for line in lines:
        running += 1 if line.startswith("S ") else -1
        most = max(most, running)
    return most


def test_at_most_max_concurrency_tasks_run_at_once_across_executors(
    tmp_path: Path, queued: list[str]
) -> None:
    log = tmp_path / "spans.log"
    wf = plait.Workflow("mixed")
    for i in range(24):
        executor = "threads" if i % 3 == 0 else "processes"
        wf.add_task(
            f"t{i}",
            log_span,
            params={"log": str(log), "name": f"t{i}", "seconds": 0.02},
            executor=executor,
        )
    events: list[Event] = []
    lock = threading.Lock()

    def keep(event: Event) -> None:
        with lock:
            events.append(event)

    processes = ProcessExecutor(max_workers=2)
    threads = ThreadExecutor(2)
    try:
        result = _run(wf, processes, threads, max_concurrency=3, subscribers=[keep])
        # A second run: the workers are warm, so calls are queued behind running ones.
        log.unlink()
        events.clear()
        result = _run(wf, processes, threads, max_concurrency=3, subscribers=[keep])
    finally:
        processes.shutdown()
        threads.shutdown()
    assert result.status is plait.RunStatus.SUCCEEDED
    assert queued  # calls were queued behind running ones
    lines = log.read_text().splitlines()
    assert len(lines) == 48
    assert _most_at_once(lines) <= 3
    # As the events tell it too: a task starts (TaskStarted) only once a slot is free.
    started = 0
    for event in events:
        if isinstance(event, TaskStarted):
            started += 1
            assert started <= 3
        elif isinstance(event, TaskSucceeded):
            started -= 1


def test_a_queued_task_s_timeout_counts_from_its_start_not_from_its_wait(
    queued: list[str],
) -> None:
    wf = plait.Workflow("timeouts")
    # With one worker, quick waits behind slow in the worker's pipe: longer than its timeout.
    wf.add_task("slow", log_span, params={"log": "/dev/null", "name": "slow", "seconds": 2.5})
    wf.add_task("quick", log_span, params={"log": "/dev/null", "name": "quick"}, timeout=1.0)
    result, _ = _on_one_worker(wf, max_retries=0)
    assert queued == ["quick"]
    assert result.status is plait.RunStatus.SUCCEEDED, result.tasks["quick"].error


def test_a_queued_task_cancelled_by_a_halt_never_runs(tmp_path: Path, queued: list[str]) -> None:
    marker = tmp_path / "second-ran"
    wf = plait.Workflow("halted")
    wf.add_task(
        "first",
        log_span,
        params={"log": "/dev/null", "name": "first", "seconds": 1.5},
        executor="processes",
    )
    wf.add_task("second", touch, params={"marker": str(marker)}, executor="processes")
    # Fails while first runs, with second queued behind it: the run halts.
    wf.add_task("boom", _fail_later, executor="threads", critical=True)
    processes = ProcessExecutor(max_workers=1)
    threads = ThreadExecutor(1)
    try:
        result = _run(wf, processes, threads, max_concurrency=2, max_retries=0)
    finally:
        processes.shutdown()
        threads.shutdown()
    assert queued == ["second"]
    assert result.tasks["boom"].status is TaskStatus.FAILED
    assert result.tasks["second"].status is TaskStatus.CANCELLED
    assert not marker.exists()


def _fail_later() -> None:
    time.sleep(0.4)
    raise RuntimeError("boom")


def test_a_worker_killed_with_a_task_queued_behind_its_running_one(
    tmp_path: Path, queued: list[str]
) -> None:
    """The running task fails retryably (WorkerLostError) and is retried; the queued one, which
    never began, runs once, in a fresh worker, and its TaskStarted comes when it starts."""
    marker = tmp_path / "killed"
    log = tmp_path / "spans.log"
    wf = plait.Workflow("killed")
    wf.add_task(
        "dies",
        kill_own_worker,
        params={"marker": str(marker)},
        retry=plait.RetryPolicy(max_retries=1, backoff=0.01),
    )
    wf.add_task("queued", log_span, params={"log": str(log), "name": "queued"})
    events: list[Event] = []
    result, processes = _on_one_worker(wf, subscribers=[events.append])
    assert queued[0] == "queued"
    assert result.status is plait.RunStatus.SUCCEEDED
    assert result.tasks["dies"].attempts == 2
    assert result.tasks["queued"].attempts == 1
    assert log.read_text() == "S queued\nE queued\n"  # it ran once
    assert processes.statistics().started == 2  # a fresh worker after the kill
    order = [
        (type(e).__name__, e.task_id)
        for e in events
        if isinstance(e, TaskStarted | TaskRetrying | TaskSucceeded)
    ]
    assert order.index(("TaskRetrying", "dies")) < order.index(("TaskStarted", "queued"))
    assert order.count(("TaskStarted", "queued")) == 1
    (retried,) = [e for e in events if isinstance(e, TaskRetrying)]
    assert retried.error.type == "plait.WorkerLostError"


def test_a_task_queued_behind_one_that_times_out_runs_in_a_fresh_worker(
    tmp_path: Path, queued: list[str]
) -> None:
    log = tmp_path / "spans.log"
    wf = plait.Workflow("stuck")
    wf.add_task(
        "stuck", log_span, params={"log": str(log), "name": "stuck", "seconds": 5}, timeout=0.5
    )
    wf.add_task("after", log_span, params={"log": str(log), "name": "after"})
    result, processes = _on_one_worker(wf, cancel_grace=0.2, max_retries=0)
    assert queued == ["after"]
    assert result.tasks["stuck"].error is not None
    assert result.tasks["stuck"].error.type == "plait.TaskTimeoutError"
    assert result.tasks["after"].status is TaskStatus.SUCCEEDED
    assert log.read_text() == "S stuck\nS after\nE after\n"  # once, while stuck was killed
    assert processes.statistics().started == 2
